-- The pure-Lua decoder: Protocol Buffers bytes to plain Lua tables, driven by a compiled
-- moonforge.Schema message, with protobuf-go's semantics (see moonforge.codec for the mapping).
-- It never raises for bad input: it returns nil and a message naming the field.
local protowire = require("moonforge.protowire")
local int64 = require("moonforge.int64")
local ieee754 = require("moonforge.ieee754")
local utf8check = require("moonforge.utf8check")

local floor = math.floor
local sub = string.sub
local read_varint, read_tag, read_length = protowire.read_varint, protowire.read_tag, protowire.read_length
local read_fixed32, read_fixed64 = protowire.read_fixed32, protowire.read_fixed64
local MAX_FIELD = protowire.MAX_FIELD

local M = {}

-- UNKNOWN is the key under which a decoded table keeps the fields its message does not declare
-- (as their wire bytes), so that encoding the table writes them back. No field can have this name.
M.UNKNOWN = "@unknown"
local UNKNOWN = M.UNKNOWN

-- MAX_DEPTH bounds message nesting.
M.MAX_DEPTH = 100
local MAX_DEPTH = M.MAX_DEPTH

local TWO31, TWO32 = 2147483648, 4294967296

-- Readers return the next position and the value, or nil and a message.
local readers = {}

function readers.int32(s, pos, limit)
  local lo, hi, np = read_varint(s, pos, limit)
  if not lo then
    return nil, hi
  end
  if lo >= TWO31 then
    lo = lo - TWO32
  end
  return np, lo
end

function readers.uint32(s, pos, limit)
  local lo, hi, np = read_varint(s, pos, limit)
  if not lo then
    return nil, hi
  end
  return np, lo
end

function readers.sint32(s, pos, limit)
  local lo, hi, np = read_varint(s, pos, limit)
  if not lo then
    return nil, hi
  end
  if lo % 2 == 0 then
    return np, floor(lo / 2)
  end
  return np, -floor(lo / 2) - 1
end

function readers.bool(s, pos, limit)
  local lo, hi, np = read_varint(s, pos, limit)
  if not lo then
    return nil, hi
  end
  return np, lo ~= 0 or hi ~= 0
end

function readers.enum(s, pos, limit, fd)
  local np, n = readers.int32(s, pos, limit)
  if not np then
    return nil, n
  end
  local name = fd.enum.by_number[n]
  if name then
    return np, name
  end
  return np, n
end

function readers.int64(s, pos, limit)
  local lo, hi, np = read_varint(s, pos, limit)
  if not lo then
    return nil, hi
  end
  return np, int64.signed(hi, lo)
end

function readers.uint64(s, pos, limit)
  local lo, hi, np = read_varint(s, pos, limit)
  if not lo then
    return nil, hi
  end
  return np, int64.unsigned(hi, lo)
end

function readers.sint64(s, pos, limit)
  local lo, hi, np = read_varint(s, pos, limit)
  if not lo then
    return nil, hi
  end
  local odd = lo % 2 == 1
  lo = floor(lo / 2) + (hi % 2) * TWO31
  hi = floor(hi / 2)
  if odd then
    -- -(n+1) is the bitwise complement of n.
    hi, lo = TWO32 - 1 - hi, TWO32 - 1 - lo
  end
  return np, int64.signed(hi, lo)
end

function readers.fixed32(s, pos, limit)
  local v, np = read_fixed32(s, pos, limit)
  if not v then
    return nil, np
  end
  return np, v
end

function readers.sfixed32(s, pos, limit)
  local v, np = read_fixed32(s, pos, limit)
  if not v then
    return nil, np
  end
  if v >= TWO31 then
    v = v - TWO32
  end
  return np, v
end

function readers.fixed64(s, pos, limit)
  local lo, hi, np = read_fixed64(s, pos, limit)
  if not lo then
    return nil, hi
  end
  return np, int64.unsigned(hi, lo)
end

function readers.sfixed64(s, pos, limit)
  local lo, hi, np = read_fixed64(s, pos, limit)
  if not lo then
    return nil, hi
  end
  return np, int64.signed(hi, lo)
end

function readers.float(s, pos, limit)
  if pos + 3 > limit then
    return nil, "truncated float"
  end
  return pos + 4, ieee754.read_float(s, pos)
end

function readers.double(s, pos, limit)
  if pos + 7 > limit then
    return nil, "truncated double"
  end
  return pos + 8, ieee754.read_double(s, pos)
end

function readers.bytes(s, pos, limit)
  local first, last, np = read_length(s, pos, limit)
  if not first then
    return nil, last
  end
  return np, sub(s, first, last)
end

function readers.string(s, pos, limit)
  local first, last, np = read_length(s, pos, limit)
  if not first then
    return nil, last
  end
  if not utf8check.valid(s, first, last) then
    return nil, "invalid UTF-8"
  end
  return np, sub(s, first, last)
end

local decode_message

-- new_message returns a table with the defaults of md: implicit-presence scalars at their
-- default, repeated fields and maps empty.
local function new_message(md)
  local t = {}
  for _, fd in ipairs(md.fields) do
    if fd.map or fd.repeated then
      t[fd.name] = {}
    elseif not fd.presence then
      if fd.type == "enum" then
        t[fd.name] = fd.enum.zero
      else
        t[fd.name] = fd.default
      end
    end
  end
  return t
end

-- read_value reads one value of field fd at pos; messages merge into into when given.
local function read_value(fd, s, pos, limit, depth, into)
  if fd.type == "message" then
    local first, last, np = read_length(s, pos, limit)
    if not first then
      return nil, ": " .. last
    end
    local t, err = decode_message(fd.message, s, first, last, depth + 1, into)
    if not t then
      return nil, err
    end
    return np, t
  end
  local np, v = readers[fd.type](s, pos, limit, fd)
  if not np then
    return nil, ": " .. v
  end
  return np, v
end

-- read_map_entry reads one map entry at pos into the map table m.
local function read_map_entry(fd, s, pos, limit, depth, m)
  local first, last, np = read_length(s, pos, limit)
  if not first then
    return nil, ": " .. last
  end
  local kfd, vfd = fd.key, fd.value
  local key = kfd.default
  local value
  local p = first
  while p <= last do
    local number, wt, tp = read_tag(s, p, last)
    if not number then
      return nil, ": " .. wt
    end
    if number > MAX_FIELD then
      return nil, ": field number out of range"
    end
    local err
    if number == 1 and wt == kfd.wire then
      p, key = read_value(kfd, s, tp, last, depth)
      if not p then
        return nil, "(key)" .. key
      end
    elseif number == 2 and wt == vfd.wire then
      p, err = read_value(vfd, s, tp, last, depth, value)
      if not p then
        return nil, "(value)" .. err
      end
      value = err
    else
      p, err = protowire.skip(s, tp, last, number, wt, MAX_DEPTH - depth)
      if not p then
        return nil, ": " .. err
      end
    end
  end
  if value == nil then
    if vfd.type == "message" then
      value = new_message(vfd.message)
    elseif vfd.type == "enum" then
      value = vfd.enum.zero
    else
      value = vfd.default
    end
  end
  m[key] = value
  return np
end

-- decode_message decodes s[pos..limit] as md into a new table, or merges it into t. Errors are
-- returned as a path relative to md followed by ": " and the problem.
function decode_message(md, s, pos, limit, depth, t)
  if depth > MAX_DEPTH then
    return nil, ": messages nested more than " .. MAX_DEPTH .. " deep"
  end
  t = t or new_message(md)
  local unknown, nunknown = nil, 0
  while pos <= limit do
    local number, wt, np = read_tag(s, pos, limit)
    if not number then
      return nil, ": " .. wt
    end
    if number > MAX_FIELD then
      return nil, ": field number " .. number .. " out of range"
    end
    if wt == 4 then
      return nil, ": end group without start group"
    end
    local fd = md.by_number[number]
    local handled, err = false, nil
    if fd then
      local name = fd.name
      if fd.map then
        if wt == 2 then
          pos, err = read_map_entry(fd, s, np, limit, depth, t[name])
          if not pos then
            return nil, "." .. name .. err
          end
          handled = true
        end
      elseif wt == fd.wire then
        if fd.repeated then
          local list = t[name]
          pos, err = read_value(fd, s, np, limit, depth)
          if not pos then
            return nil, "." .. name .. "[" .. (#list + 1) .. "]" .. err
          end
          list[#list + 1] = err
        else
          if fd.oneof then
            for _, other in ipairs(md.oneofs[fd.oneof]) do
              if other ~= fd then
                t[other.name] = nil
              end
            end
          end
          pos, err = read_value(fd, s, np, limit, depth, t[name])
          if not pos then
            return nil, "." .. name .. err
          end
          t[name] = err
        end
        handled = true
      elseif wt == 2 and fd.packed_tag then
        local first, last, after = read_length(s, np, limit)
        if not first then
          return nil, "." .. name .. ": " .. last
        end
        local list = t[name]
        local p = first
        while p <= last do
          local v
          p, v = readers[fd.type](s, p, last, fd)
          if not p then
            return nil, "." .. name .. "[" .. (#list + 1) .. "]: " .. v
          end
          list[#list + 1] = v
        end
        pos = after
        handled = true
      end
    end
    if not handled then
      -- An undeclared field, or a declared one with another wire type: kept as unknown, tag
      -- and value as they came, as protobuf-go does.
      local after
      after, err = protowire.skip(s, np, limit, number, wt, MAX_DEPTH - depth)
      if not after then
        return nil, ": field " .. number .. ": " .. err
      end
      nunknown = nunknown + 1
      unknown = unknown or {}
      unknown[nunknown] = sub(s, pos, after - 1)
      pos = after
    end
  end
  if unknown then
    t[UNKNOWN] = (t[UNKNOWN] or "") .. table.concat(unknown)
  end
  return t
end

-- decode returns the table decoded from the bytes s as the compiled message md, or nil and an
-- error naming the field, e.g. "demo.ArenaState.players[2].pos.x: truncated float".
function M.decode(md, s)
  if type(s) ~= "string" then
    return nil, md.full_name .. ": want a string of bytes, got " .. type(s)
  end
  local t, err = decode_message(md, s, 1, #s, 1)
  if not t then
    return nil, md.full_name .. err
  end
  return t
end

M.new_message = new_message

return M
