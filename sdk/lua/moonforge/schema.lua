-- Schema: the messages, enums and message ids of one or more generated schema modules
-- (moonforge/generated/*.lua, written by tools/protogen from proto/), compiled into the tables
-- the codec walks. A Schema is immutable after new and may be shared by any number of clients.
local protowire = require("moonforge.protowire")

local Schema = {}
Schema.__index = Schema

-- The wire type each field type is written with.
local WIRE = {
  double = 1, float = 5, int64 = 0, uint64 = 0, int32 = 0, fixed64 = 1, fixed32 = 5, bool = 0,
  string = 2, bytes = 2, message = 2, uint32 = 0, enum = 0, sfixed32 = 5, sfixed64 = 1,
  sint32 = 0, sint64 = 0,
}

-- The value a field without explicit presence has when it is not on the wire.
local DEFAULTS = {
  double = 0.0, float = 0.0, int64 = 0, uint64 = 0, int32 = 0, fixed64 = 0, fixed32 = 0,
  bool = false, string = "", bytes = "", uint32 = 0, sfixed32 = 0, sfixed64 = 0, sint32 = 0,
  sint64 = 0,
}

local function scalar(type_name, number, name, ref_message, ref_enum)
  local wire = WIRE[type_name]
  if not wire then
    error("moonforge.Schema: unsupported field type " .. tostring(type_name) .. " of " .. name, 3)
  end
  return {
    name = name,
    number = number,
    type = type_name,
    wire = wire,
    tag = protowire.tag(number, wire),
    message_name = ref_message,
    enum_name = ref_enum,
    default = DEFAULTS[type_name],
  }
end

-- compile_field turns one generated field description into the codec's field table.
local function compile_field(full_name, f)
  local path = full_name .. "." .. f.name
  local fd
  if f.type == "map" then
    fd = {
      name = f.name,
      number = f.number,
      type = "map",
      map = true,
      wire = 2,
      tag = protowire.tag(f.number, 2),
      key = scalar(f.key, 1, path .. "(key)"),
      value = scalar(f.value, 2, path .. "(value)", f.message, f.enum),
    }
  else
    fd = scalar(f.type, f.number, path, f.message, f.enum)
    fd.name = f.name
    fd.repeated = f.repeated or false
    fd.oneof = f.oneof
    fd.optional = f.optional or false
    fd.presence = (not fd.repeated) and (f.optional or f.oneof ~= nil or f.type == "message")
    if fd.repeated and fd.wire ~= 2 then
      fd.packed = f.packed ~= false
      fd.packed_tag = protowire.tag(f.number, 2)
    end
  end
  fd.path = path
  return fd
end

-- new compiles a generated module, or a sequence of them, into one Schema:
-- Schema.new(require("moonforge.generated.demo")) or Schema.new({ mod_a, mod_b }). Arguments after
-- the first are ignored, and so is a string that ends a sequence after a module: Lua 5.4's require
-- returns the file's path as a second value, which the last call in a table constructor such as
-- { require("a"), require("b") } adds as an element. Types with the same full name
-- in two modules are the same type (both came from the same .proto file); two messages with one
-- id, or one message with two ids, is an error. It raises an error for a malformed module.
function Schema.new(modules)
  local self = setmetatable({
    messages = {}, -- by full name
    enums = {}, -- by full name
    by_id = {},
    by_short = {}, -- messages with an id by short name, false when the name is ambiguous
    requests = {}, -- { helper, request full name, reply full name }
    helpers = {}, -- by helper name
    descriptors = {}, -- each module's FileDescriptorSet, for lua-protobuf
  }, Schema)
  if type(modules) == "table" and modules.messages then
    modules = { modules }
  end
  if type(modules) ~= "table" or #modules == 0 then
    error("moonforge.Schema.new: want a generated schema module or a sequence of them, got " .. tostring(modules), 2)
  end
  local n = #modules
  if n > 1 and type(modules[n]) == "string" and type(modules[n - 1]) == "table" then
    n = n - 1 -- the loader data of Lua 5.4's require
  end
  for i = 1, n do
    local mod = modules[i]
    if type(mod) ~= "table" or type(mod.messages) ~= "table" then
      error("moonforge.Schema.new: not a generated schema module: " .. tostring(mod), 2)
    end
    if mod.descriptor then
      local seen = false
      for _, d in ipairs(self.descriptors) do
        seen = seen or d == mod.descriptor
      end
      if not seen then
        self.descriptors[#self.descriptors + 1] = mod.descriptor
      end
    end
    for name, values in pairs(mod.enums or {}) do
      if not self.enums[name] then
        local ed = { full_name = name, by_name = {}, by_number = {}, zero = nil }
        for _, v in ipairs(values) do
          if ed.by_name[v[1]] == nil then
            ed.by_name[v[1]] = v[2]
          end
          if ed.by_number[v[2]] == nil then
            ed.by_number[v[2]] = v[1]
          end
        end
        ed.zero = ed.by_number[0] or 0
        self.enums[name] = ed
      end
    end
    for name, fields in pairs(mod.messages) do
      if not self.messages[name] then
        local md = {
          full_name = name,
          name = string.match(name, "([^.]+)$"),
          fields = {},
          by_number = {},
          by_name = {},
          oneofs = {},
        }
        for _, f in ipairs(fields) do
          local fd = compile_field(name, f)
          md.fields[#md.fields + 1] = fd
          md.by_number[fd.number] = fd
          md.by_name[fd.name] = fd
          if fd.oneof then
            md.oneofs[fd.oneof] = md.oneofs[fd.oneof] or {}
            table.insert(md.oneofs[fd.oneof], fd)
          end
        end
        table.sort(md.fields, function(a, b) return a.number < b.number end)
        -- protobuf-go writes the members of (real) oneofs after all other fields, oneof by
        -- oneof in declaration order: encode_order is that order.
        local oneof_index, nindex = {}, 0
        for _, f in ipairs(fields) do
          if f.oneof and not oneof_index[f.oneof] then
            nindex = nindex + 1
            oneof_index[f.oneof] = nindex
          end
        end
        md.encode_order = {}
        for i, fd in ipairs(md.fields) do
          md.encode_order[i] = fd
        end
        table.sort(md.encode_order, function(a, b)
          local ia, ib = a.oneof and oneof_index[a.oneof] or 0, b.oneof and oneof_index[b.oneof] or 0
          if ia ~= ib then
            return ia < ib
          end
          return a.number < b.number
        end)
        self.messages[name] = md
      end
    end
    for name, id in pairs(mod.ids or {}) do
      local md = self.messages[name]
      if not md then
        error("moonforge.Schema.new: id " .. id .. " names unknown message " .. name, 2)
      end
      if (md.id and md.id ~= id) or (self.by_id[id] and self.by_id[id] ~= md) then
        error("moonforge.Schema.new: message id " .. id .. " is used by " .. name .. " and " ..
          (self.by_id[id] or md).full_name, 2)
      end
      md.id = id
      self.by_id[id] = md
    end
    for _, r in ipairs(mod.requests or {}) do
      if not self.helpers[r[1]] then
        self.requests[#self.requests + 1] = r
        self.helpers[r[1]] = mod.helpers and mod.helpers[r[1]]
      end
    end
  end
  -- Resolve references, and index messages with ids by short name.
  local function resolve(fd)
    if fd.type == "message" then
      fd.message = self.messages[fd.message_name]
      if not fd.message then
        error("moonforge.Schema.new: " .. fd.path .. " refers to unknown message " .. tostring(fd.message_name), 3)
      end
    elseif fd.type == "enum" then
      fd.enum = self.enums[fd.enum_name]
      if not fd.enum then
        error("moonforge.Schema.new: " .. fd.path .. " refers to unknown enum " .. tostring(fd.enum_name), 3)
      end
    end
  end
  for _, md in pairs(self.messages) do
    for _, fd in ipairs(md.fields) do
      if fd.map then
        resolve(fd.value)
      else
        resolve(fd)
      end
    end
    if md.id then
      if self.by_short[md.name] == nil then
        self.by_short[md.name] = md
      elseif self.by_short[md.name] ~= md then
        self.by_short[md.name] = false
      end
    end
  end
  return self
end

-- message returns the compiled message named by its full name ("demo.ChatSendReq") or, if it
-- has an id and no other message with an id shares it, by its short name ("ChatSendReq").
function Schema:message(name)
  return self.messages[name] or self.by_short[name] or nil
end

-- message_by_id returns the compiled message with the given id, or nil.
function Schema:message_by_id(id)
  return self.by_id[id]
end

return Schema
