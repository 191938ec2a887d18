-- The lua-protobuf codec (see moonforge.codec): the schema's FileDescriptorSets are loaded into
-- lua-protobuf's pb module, which then encodes and decodes by full message name. After decoding,
-- implicit-presence scalars, repeated fields and maps are filled in with their defaults as the
-- pure-Lua codec does. What differs is lua-protobuf's: its handling of 64-bit integers (its
-- int64 options), and unknown fields, which it drops. It changes no pb option; the game may set
-- them. Loading the descriptors adds the schema's types to pb's global type table.
local decoder = require("moonforge.decoder")

local M = {}

-- find returns lua-protobuf's pb module when it is installed, else nil.
function M.find()
  local ok, pb = pcall(require, "pb")
  if ok and type(pb) == "table" and type(pb.load) == "function" and type(pb.encode) == "function" then
    return pb
  end
  return nil
end

-- fill sets the defaults of md's fields that t lacks, in t and every message it holds.
local function fill(md, t, depth)
  if depth > decoder.MAX_DEPTH then
    return
  end
  for _, fd in ipairs(md.fields) do
    local v = t[fd.name]
    if v == nil then
      if fd.map or fd.repeated then
        t[fd.name] = {}
      elseif not fd.presence then
        t[fd.name] = fd.type == "enum" and fd.enum.zero or fd.default
      end
    elseif fd.type == "message" then
      if fd.repeated then
        for _, m in ipairs(v) do
          fill(fd.message, m, depth + 1)
        end
      else
        fill(fd.message, v, depth + 1)
      end
    elseif fd.map and fd.value.type == "message" then
      for _, m in pairs(v) do
        fill(fd.value.message, m, depth + 1)
      end
    end
  end
end

-- new loads schema's descriptors into pb and returns the codec. It raises an error when pb
-- refuses a descriptor.
function M.new(schema, pb)
  for _, d in ipairs(schema.descriptors) do
    local ok, pos = pb.load(d)
    if not ok then
      error("moonforge: lua-protobuf could not load the schema descriptor (at byte " .. tostring(pos) .. ")", 3)
    end
  end
  local codec = { name = "pb" }
  function codec.encode(md, t)
    if type(t) ~= "table" then
      return nil, md.full_name .. ": want table, got " .. type(t)
    end
    local ok, res = pcall(pb.encode, md.full_name, t)
    if not ok or type(res) ~= "string" then
      return nil, md.full_name .. ": " .. tostring(res)
    end
    return res
  end
  function codec.decode(md, s)
    if type(s) ~= "string" then
      return nil, md.full_name .. ": want a string of bytes, got " .. type(s)
    end
    local ok, res, err = pcall(pb.decode, md.full_name, s)
    if not ok or type(res) ~= "table" then
      return nil, md.full_name .. ": " .. tostring(err or res)
    end
    fill(md, res, 1)
    return res
  end
  return codec
end

return M
