-- IEEE 754 binary32 and binary64 in little-endian byte order, as Protocol Buffers writes float
-- and double. Lua 5.3+ uses string.pack; Lua 5.1 and 5.2 compute the bits with math.frexp and
-- math.ldexp. Either way NaN is written as the canonical quiet NaN (float 0x7fc00000, double
-- 0x7ff8000000000000), -0 keeps its sign, and a double is rounded to the nearest float, ties to
-- even.
local floor, frexp, ldexp = math.floor, math.frexp, math.ldexp
local byte, char = string.byte, string.char

local M = {}

local NAN32 = char(0, 0, 192, 127)
local NAN64 = char(0, 0, 0, 0, 0, 0, 248, 127)
local INF = math.huge

-- FLOAT_LIMIT is the smallest magnitude that rounds to infinity as a float (2^128 - 2^103).
M.FLOAT_LIMIT = 340282356779733661637539395458142568448

-- u32 writes an integer in [0, 2^32) as 4 little-endian bytes.
local function u32(v)
  local b1 = v % 256
  v = (v - b1) / 256
  local b2 = v % 256
  v = (v - b2) / 256
  local b3 = v % 256
  return char(b1, b2, b3, (v - b3) / 256)
end

local function is_negative(v)
  return v < 0 or (v == 0 and 1 / v < 0)
end

-- round_even rounds a non-negative number to the nearest integer, ties to even.
local function round_even(x)
  local f = floor(x)
  local r = x - f
  if r > 0.5 or (r == 0.5 and f % 2 == 1) then
    return f + 1
  end
  return f
end

local function pure_float(v)
  if v ~= v then
    return NAN32
  end
  local sign = 0
  if is_negative(v) then
    sign, v = 2147483648, -v
  end
  local bits
  if v == INF then
    bits = 2139095040
  elseif v == 0 then
    bits = 0
  else
    local m, e = frexp(v) -- v = m * 2^e, 0.5 <= m < 1
    local exp = e + 126
    if exp >= 1 then
      local mant = round_even((m * 2 - 1) * 8388608)
      bits = exp * 8388608 + mant -- a mantissa carry moves into the exponent
    else
      bits = round_even(ldexp(v, 149)) -- subnormal; may round up to the smallest normal
    end
    if bits >= 2139095040 then
      bits = 2139095040
    end
  end
  return u32(sign + bits)
end

local function pure_double(v)
  if v ~= v then
    return NAN64
  end
  local sign = 0
  if is_negative(v) then
    sign, v = 2147483648, -v
  end
  local hi, lo
  if v == INF then
    hi, lo = 2146435072, 0
  elseif v == 0 then
    hi, lo = 0, 0
  else
    local m, e = frexp(v)
    local exp = e + 1022
    local mant
    if exp >= 1 then
      mant = (m * 2 - 1) * 4503599627370496
    else
      exp, mant = 0, ldexp(v, 1074)
    end
    lo = mant % 4294967296
    hi = exp * 1048576 + (mant - lo) / 4294967296
  end
  return u32(lo) .. u32(sign + hi)
end

local function pure_read_float(s, pos)
  local b1, b2, b3, b4 = byte(s, pos, pos + 3)
  local sign = b4 >= 128
  local exp = (b4 % 128) * 2 + floor(b3 / 128)
  local mant = (b3 % 128) * 65536 + b2 * 256 + b1
  local v
  if exp == 255 then
    v = mant == 0 and INF or 0 / 0
  elseif exp == 0 then
    v = ldexp(mant, -149)
  else
    v = ldexp(mant + 8388608, exp - 150)
  end
  if sign then
    v = -v
  end
  return v
end

local function pure_read_double(s, pos)
  local b1, b2, b3, b4, b5, b6, b7, b8 = byte(s, pos, pos + 7)
  local sign = b8 >= 128
  local exp = (b8 % 128) * 16 + floor(b7 / 16)
  local mant = ((((((b7 % 16) * 256 + b6) * 256 + b5) * 256 + b4) * 256 + b3) * 256 + b2) * 256 + b1
  local v
  if exp == 2047 then
    v = mant == 0 and INF or 0 / 0
  elseif exp == 0 then
    v = ldexp(mant, -1074)
  else
    v = ldexp(mant + 4503599627370496, exp - 1075)
  end
  if sign then
    v = -v
  end
  return v
end

if string.pack then
  local pack, unpack = string.pack, string.unpack
  -- float rounds v to a float and returns its 4 bytes.
  function M.float(v)
    if v ~= v then
      return NAN32
    end
    return pack("<f", v)
  end
  -- double returns the 8 bytes of v.
  function M.double(v)
    if v ~= v then
      return NAN64
    end
    return pack("<d", v)
  end
  -- read_float returns the float at s[pos..pos+3]; the caller checks the length.
  function M.read_float(s, pos)
    return (unpack("<f", s, pos))
  end
  -- read_double returns the double at s[pos..pos+7]; the caller checks the length.
  function M.read_double(s, pos)
    return (unpack("<d", s, pos))
  end
else
  M.float, M.double = pure_float, pure_double
  M.read_float, M.read_double = pure_read_float, pure_read_double
end

-- The portable implementations, for tests on versions that have both string.pack and
-- math.frexp (Lua 5.3, or 5.4 built with LUA_COMPAT_MATHLIB); nil elsewhere.
if frexp and ldexp then
  M.pure = { float = pure_float, double = pure_double, read_float = pure_read_float, read_double = pure_read_double }
end

return M
