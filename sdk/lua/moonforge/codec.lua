-- Codec: converts messages between Protocol Buffers bytes and plain Lua tables. A codec has
--
--   codec.name                   "lua" or "pb"
--   codec.encode(md, t)          -> bytes | nil, message
--   codec.decode(md, bytes)      -> table | nil, message
--
-- where md is a compiled message of a moonforge.Schema. Neither raises for bad input.
-- Implementations: lua_codec (pure Lua, the default and what the tests cover) and pb_codec
-- (lua-protobuf's pb module, used by "auto" when it is installed).
--
-- The mapping of the pure-Lua codec, the same as the server's Lua mapping:
--   * string: a Lua string, valid UTF-8; bytes: a Lua string, any bytes.
--   * int32, uint32, sint32, fixed32, sfixed32: integers. float, double: numbers.
--   * 64-bit integers: see moonforge.int64 (integers on Lua 5.3+, numbers up to 2^53 or decimal
--     strings on Lua 5.1/5.2); encoding takes numbers or decimal strings.
--   * bool: boolean. enum: the value's name, or the number when it has no name; encoding takes
--     either.
--   * message: a table, absent when not on the wire. repeated: a sequence, always present.
--     map: a table keyed by the key, always present. oneof: only the member set is present.
--     proto3 optional: absent when not set.
--   * Scalars without explicit presence are always present on decode, with their default (0,
--     "", false, the enum's zero name), and not written when at their default (-0.0 is written).
--   * Fields a message does not declare are kept, as bytes, under the key codec.UNKNOWN
--     ("@unknown") and written back after the known fields.
--   * Encoding writes fields in number order (the members of oneofs last, as protobuf-go does),
--     repeated scalars packed (unless [packed = false]), map entries sorted by key, NaN as the
--     canonical quiet NaN: protobuf-go's deterministic output, byte for byte. A key that is not a field, a value of the wrong type, an integer out
--     of range, two members of one oneof or invalid UTF-8 is an error naming the field.
local decoder = require("moonforge.decoder")

local M = {}

M.UNKNOWN = decoder.UNKNOWN

-- new returns the codec for schema: backend "lua" (pure Lua), "pb" (lua-protobuf; an error
-- when it is missing), or "auto" (the default: pb when require("pb") succeeds, else lua).
function M.new(schema, backend)
  backend = backend or "auto"
  if backend == "lua" then
    return require("moonforge.lua_codec").new(schema)
  end
  local pb_codec = require("moonforge.pb_codec")
  local pb = pb_codec.find()
  if backend == "pb" then
    if not pb then
      error("moonforge: codec \"pb\" needs lua-protobuf's pb module, which is not installed", 2)
    end
    return pb_codec.new(schema, pb)
  end
  if backend ~= "auto" then
    error("moonforge: unknown codec " .. tostring(backend) .. " (want \"auto\", \"lua\" or \"pb\")", 2)
  end
  if pb then
    return pb_codec.new(schema, pb)
  end
  return require("moonforge.lua_codec").new(schema)
end

return M
