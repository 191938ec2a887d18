-- 64-bit integers for every Lua version, without bit operators.
--
-- A 64-bit value travels as two numbers (hi, lo), each an integer in [0, 2^32), hi holding the
-- high 32 bits of the two's complement pattern. Only + - * / % and math.floor are used on them,
-- all exact because no intermediate result exceeds 2^53, so the same code runs on Lua 5.1 and
-- 5.2 (doubles only) and on 5.3 and 5.4 (where the results stay integers).
--
-- In Lua tables (the Lua value of an int64, sint64, sfixed64, uint64 or fixed64 field):
--   * Lua 5.3 and 5.4: an integer; a uint64/fixed64 above math.maxinteger is a decimal string.
--   * Lua 5.1 and 5.2: a number when |v| <= 2^53 (exact in a double), else a decimal string.
-- Encoding accepts either form on every version: an integral number in range, or a decimal
-- string ("-9223372036854775808", "18446744073709551615").
local floor = math.floor

local M = {}

local TWO32 = 4294967296
local TWO31 = 2147483648
local TWO21 = 2097152 -- hi of 2^53

-- NATIVE is true where numbers have a 64-bit integer subtype (Lua 5.3+).
local NATIVE = math.type ~= nil and math.maxinteger ~= nil and math.maxinteger > 2 ^ 53
M.NATIVE = NATIVE

-- fmt formats an integral number in [-2^63, 2^64) that is exact, without exponent.
local function fmt(v)
  if NATIVE and math.type(v) == "integer" then
    return tostring(v)
  end
  return string.format("%.0f", v)
end
M.format = fmt

-- decimal returns the unsigned value of (hi, lo) as a decimal string.
local function decimal(hi, lo)
  if hi < TWO21 then
    return fmt(hi * TWO32 + lo)
  end
  local digits = {}
  while hi > 0 or lo > 0 do
    local r = hi % 10
    hi = floor(hi / 10)
    local cur = r * TWO32 + lo
    lo = floor(cur / 10)
    digits[#digits + 1] = string.char(48 + cur % 10)
  end
  local out = {}
  for i = #digits, 1, -1 do
    out[#out + 1] = digits[i]
  end
  return table.concat(out)
end
M.decimal = decimal

-- negate returns the two's complement negation of (hi, lo).
local function negate(hi, lo)
  if lo == 0 then
    return (TWO32 - hi) % TWO32, 0
  end
  return TWO32 - 1 - hi, TWO32 - lo
end
M.negate = negate

-- unsigned returns the Lua value of the uint64 (hi, lo).
function M.unsigned(hi, lo)
  if hi < TWO21 or (hi == TWO21 and lo == 0) then
    return hi * TWO32 + lo
  end
  if NATIVE and hi < TWO31 then
    return hi * TWO32 + lo
  end
  return decimal(hi, lo)
end

-- signed returns the Lua value of the int64 whose two's complement is (hi, lo).
function M.signed(hi, lo)
  if hi < TWO31 then
    if hi < TWO21 or (hi == TWO21 and lo == 0) or NATIVE then
      return hi * TWO32 + lo
    end
    return decimal(hi, lo)
  end
  if NATIVE then
    -- Integer multiplication wraps, which gives the two's complement value directly.
    return hi * TWO32 + lo
  end
  local mh, ml = negate(hi, lo)
  if mh < TWO21 or (mh == TWO21 and ml == 0) then
    return -(mh * TWO32 + ml)
  end
  return "-" .. decimal(mh, ml)
end

-- parse reads a decimal string into the unsigned magnitude (hi, lo) and a sign; nil on a
-- malformed string or a magnitude of 2^64 or more.
local function parse(s)
  local sign, digits = string.match(s, "^(-?)(%d+)$")
  if not digits or #digits > 20 then
    return nil
  end
  local hi, lo = 0, 0
  for i = 1, #digits do
    local d = string.byte(digits, i) - 48
    local l = lo * 10 + d
    local carry = floor(l / TWO32)
    lo = l - carry * TWO32
    hi = hi * 10 + carry
    if hi >= TWO32 then
      return nil
    end
  end
  return hi, lo, sign == "-"
end

-- split returns (hi, lo) of an integral number v in [-2^63, 2^64).
local function split(v)
  local lo = v % TWO32
  local hi = floor((v - lo) / TWO32) % TWO32
  return hi, lo
end

-- from_value converts a Lua value for a 64-bit field to (hi, lo). signed selects the range:
-- [-2^63, 2^63) or [0, 2^64). On failure it returns nil and a message.
function M.from_value(v, signed)
  local tv = type(v)
  if tv == "number" then
    if NATIVE and math.type(v) == "integer" then
      if not signed and v < 0 then
        return nil, "value " .. tostring(v) .. " out of range for an unsigned field"
      end
      return split(v)
    end
    if v ~= v or v == math.huge or v == -math.huge or floor(v) ~= v then
      return nil, "want an integer, got " .. tostring(v)
    end
    if signed then
      if v < -9223372036854775808 or v >= 9223372036854775808 then
        return nil, "value " .. fmt(v) .. " out of range for a 64-bit signed field"
      end
    elseif v < 0 or v >= 18446744073709551616 then
      return nil, "value " .. fmt(v) .. " out of range for a 64-bit unsigned field"
    end
    return split(v)
  elseif tv == "string" then
    local hi, lo, neg = parse(v)
    if not hi then
      return nil, "want a decimal integer string, got " .. string.format("%q", v)
    end
    if neg then
      if not signed and (hi ~= 0 or lo ~= 0) then
        return nil, "value " .. v .. " out of range for an unsigned field"
      end
      if hi > TWO31 or (hi == TWO31 and lo > 0) then
        return nil, "value " .. v .. " out of range for a 64-bit signed field"
      end
      return negate(hi, lo)
    end
    if signed and hi >= TWO31 then
      return nil, "value " .. v .. " out of range for a 64-bit signed field"
    end
    return hi, lo
  end
  return nil, "want an integer or a decimal string, got " .. tv
end

-- less compares two 64-bit patterns as signed or unsigned integers.
function M.less(ah, al, bh, bl, signed)
  if signed then
    -- Flipping the sign bit turns signed order into unsigned order.
    ah = (ah + TWO31) % TWO32
    bh = (bh + TWO31) % TWO32
  end
  if ah ~= bh then
    return ah < bh
  end
  return al < bl
end

return M
