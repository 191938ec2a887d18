// Package schema loads the game's .proto files at run time and indexes the messages that carry a
// message id. The conversion between wire bytes and Lua tables is package luapb.
//
// Load parses every .proto file under a directory with protoparse (no protoc), indexes the
// messages that declare an id with the option (moonforge.msg_id) from moonforge/protocol.proto,
// and checks that every field can be carried to Lua (no groups, only proto3 types). A Schema is
// immutable; a hot reload loads a new one and swaps it in.
//
// # Message ids
//
// Ids come only from (moonforge.msg_id). Valid ids are 1 to 65535; 1 to 999 belong to the
// framework, so only package moonforge may use them; 0 is invalid; ids are unique across all
// files. Load reports every violation, with file and line, in one *LoadError. Only proto3 files
// and types are supported.
package schema
