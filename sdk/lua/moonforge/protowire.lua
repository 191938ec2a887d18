-- The Protocol Buffers wire format: varints, fixed-size values, tags and the skipping of field
-- values, over Lua strings. Readers take the string, a 1-based position and the last position
-- they may read (limit), and return the value(s) and the next position, or nil and a message.
-- 64-bit values are (hi, lo) pairs (see moonforge.int64).
local floor = math.floor
local byte, char = string.byte, string.char
local unpack = table.unpack or unpack

local M = {}

-- Wire types.
M.VARINT, M.FIXED64, M.BYTES, M.START_GROUP, M.END_GROUP, M.FIXED32 = 0, 1, 2, 3, 4, 5

-- MAX_FIELD is the highest field number a message may declare.
M.MAX_FIELD = 536870911

local TRUNCATED = "truncated varint"

-- read_varint returns the low and high 32 bits of the varint at pos.
function M.read_varint(s, pos, limit)
  if pos > limit then
    return nil, TRUNCATED
  end
  local b = byte(s, pos)
  if b < 128 then
    return b, 0, pos + 1
  end
  local lo, mul = b - 128, 128
  local i = pos + 1
  for _ = 1, 3 do
    if i > limit then
      return nil, TRUNCATED
    end
    b = byte(s, i)
    i = i + 1
    if b < 128 then
      return lo + b * mul, 0, i
    end
    lo = lo + (b - 128) * mul
    mul = mul * 128
  end
  -- The fifth byte holds bits 28 to 34: four for lo, three for hi.
  if i > limit then
    return nil, TRUNCATED
  end
  b = byte(s, i)
  i = i + 1
  local v = b % 128
  lo = lo + (v % 16) * 268435456
  local hi = floor(v / 16)
  if b < 128 then
    return lo, hi, i
  end
  mul = 8
  for k = 6, 10 do
    if i > limit then
      return nil, TRUNCATED
    end
    b = byte(s, i)
    i = i + 1
    if k == 10 and b > 1 then
      return nil, "varint overflows 64 bits"
    end
    hi = hi + (b % 128) * mul
    if b < 128 then
      return lo, hi, i
    end
    mul = mul * 128
  end
  return nil, "varint longer than 10 bytes"
end

-- varint returns the encoding of a non-negative integral number below 2^53.
local function varint(v)
  if v < 128 then
    return char(v)
  end
  local t, n = {}, 0
  while v >= 128 do
    n = n + 1
    t[n] = v % 128 + 128
    v = floor(v / 128)
  end
  t[n + 1] = v
  return char(unpack(t, 1, n + 1))
end
M.varint = varint

-- varint64 returns the encoding of the 64-bit pattern (hi, lo).
function M.varint64(hi, lo)
  if hi < 2097152 then
    return varint(hi * 4294967296 + lo)
  end
  local t = {}
  for i = 1, 4 do
    t[i] = lo % 128 + 128
    lo = floor(lo / 128)
  end
  t[5] = lo + (hi % 8) * 16 + 128
  hi = floor(hi / 8)
  local n = 5
  while hi >= 128 do
    n = n + 1
    t[n] = hi % 128 + 128
    hi = floor(hi / 128)
  end
  t[n + 1] = hi
  return char(unpack(t, 1, n + 1))
end

-- fixed32 returns the 4 little-endian bytes of an integer in [0, 2^32).
function M.fixed32(v)
  local b1 = v % 256
  v = floor(v / 256)
  local b2 = v % 256
  v = floor(v / 256)
  local b3 = v % 256
  return char(b1, b2, b3, floor(v / 256))
end

-- read_fixed32 returns the unsigned 32-bit value at pos.
function M.read_fixed32(s, pos, limit)
  if pos + 3 > limit then
    return nil, "truncated fixed32"
  end
  local b1, b2, b3, b4 = byte(s, pos, pos + 3)
  return b1 + b2 * 256 + b3 * 65536 + b4 * 16777216, pos + 4
end

-- read_fixed64 returns the low and high 32 bits of the fixed64 at pos.
function M.read_fixed64(s, pos, limit)
  if pos + 7 > limit then
    return nil, "truncated fixed64"
  end
  local b1, b2, b3, b4, b5, b6, b7, b8 = byte(s, pos, pos + 7)
  return b1 + b2 * 256 + b3 * 65536 + b4 * 16777216, b5 + b6 * 256 + b7 * 65536 + b8 * 16777216, pos + 8
end

-- tag returns the encoded tag of a field number and wire type.
function M.tag(number, wire_type)
  return varint(number * 8 + wire_type)
end

-- read_tag returns the field number and wire type at pos. Numbers above 2^31-1 are an error,
-- as in protobuf-go; the caller applies tighter limits where they hold.
function M.read_tag(s, pos, limit)
  local lo, hi, npos = M.read_varint(s, pos, limit)
  if not lo then
    return nil, hi
  end
  if hi >= 4 then
    return nil, "field number out of range"
  end
  local number = hi * 536870912 + floor(lo / 8)
  if number == 0 then
    return nil, "field number 0"
  end
  return number, lo % 8, npos
end

-- read_length returns the first and last positions of the length-delimited value at pos and
-- the position after it.
function M.read_length(s, pos, limit)
  local lo, hi, npos = M.read_varint(s, pos, limit)
  if not lo then
    return nil, hi
  end
  if hi ~= 0 or lo > limit - npos + 1 then
    return nil, "length past the end"
  end
  return npos, npos + lo - 1, npos + lo
end

-- skip returns the position after the value of a field with the given number and wire type,
-- checking its encoding (groups included, to the given depth).
local function skip(s, pos, limit, number, wire_type, depth)
  if wire_type == 0 then
    local lo, err, npos = M.read_varint(s, pos, limit)
    if not lo then
      return nil, err
    end
    return npos
  elseif wire_type == 1 then
    if pos + 7 > limit then
      return nil, "truncated fixed64"
    end
    return pos + 8
  elseif wire_type == 2 then
    local first, err, npos = M.read_length(s, pos, limit)
    if not first then
      return nil, err
    end
    return npos
  elseif wire_type == 5 then
    if pos + 3 > limit then
      return nil, "truncated fixed32"
    end
    return pos + 4
  elseif wire_type == 3 then
    if depth <= 0 then
      return nil, "groups nested too deep"
    end
    while true do
      local n, wt, npos = M.read_tag(s, pos, limit)
      if not n then
        return nil, wt
      end
      if wt == 4 then
        if n ~= number then
          return nil, "mismatched end group"
        end
        return npos
      end
      local err
      pos, err = skip(s, npos, limit, n, wt, depth - 1)
      if not pos then
        return nil, err
      end
    end
  elseif wire_type == 4 then
    return nil, "end group without start group"
  end
  return nil, "invalid wire type " .. wire_type
end
M.skip = skip

return M
