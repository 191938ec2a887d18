-- The pure-Lua encoder: plain Lua tables to Protocol Buffers bytes, driven by a compiled
-- moonforge.Schema message, byte for byte as protobuf-go's deterministic Marshal (see
-- moonforge.codec for the mapping). It never raises for bad input: it returns nil and a message
-- naming the field.
local protowire = require("moonforge.protowire")
local int64 = require("moonforge.int64")
local ieee754 = require("moonforge.ieee754")
local utf8check = require("moonforge.utf8check")
local decoder = require("moonforge.decoder")

local floor = math.floor
local byte, format = string.byte, string.format
local concat, sort = table.concat, table.sort
local varint, varint64, fixed32 = protowire.varint, protowire.varint64, protowire.fixed32
local UNKNOWN, MAX_DEPTH = decoder.UNKNOWN, decoder.MAX_DEPTH

local M = {}

local TWO31, TWO32 = 2147483648, 4294967296

-- fail raises the error that encode returns; pcall in encode catches it.
local function fail(msg)
  error({ msg = msg }, 0)
end

local function want_integer(v, min, max)
  if type(v) ~= "number" then
    fail("want number, got " .. type(v))
  end
  if v ~= v or floor(v) ~= v then
    fail("want an integer, got " .. tostring(v))
  end
  if v < min or v > max then
    fail("value " .. int64.format(v) .. " out of range " .. int64.format(min) .. " to " .. int64.format(max))
  end
  return v
end

local function want_int64(v, signed)
  local hi, lo = int64.from_value(v, signed)
  if not hi then
    fail(lo)
  end
  return hi, lo
end

local function is_zero(v)
  return v == 0 and 1 / v > 0
end

-- Writers return the bytes of one value (without its tag) and whether the value is the default
-- that an implicit-presence field leaves out.
local writers = {}

local function write_int32(v)
  if v >= 0 then
    return varint(v), v == 0
  end
  return varint64(TWO32 - 1, v + TWO32), false
end

function writers.int32(v)
  return write_int32(want_integer(v, -TWO31, TWO31 - 1))
end

function writers.uint32(v)
  v = want_integer(v, 0, TWO32 - 1)
  return varint(v), v == 0
end

function writers.sint32(v)
  v = want_integer(v, -TWO31, TWO31 - 1)
  if v >= 0 then
    return varint(v * 2), v == 0
  end
  return varint(-v * 2 - 1), false
end

function writers.bool(v)
  if type(v) ~= "boolean" then
    fail("want boolean, got " .. type(v))
  end
  return v and "\1" or "\0", not v
end

function writers.enum(v, fd)
  if type(v) == "string" then
    local n = fd.enum.by_name[v]
    if not n then
      fail(format("%q is not a value of %s", v, fd.enum.full_name))
    end
    return write_int32(n)
  end
  return write_int32(want_integer(v, -TWO31, TWO31 - 1))
end

function writers.int64(v)
  local hi, lo = want_int64(v, true)
  return varint64(hi, lo), hi == 0 and lo == 0
end

function writers.uint64(v)
  local hi, lo = want_int64(v, false)
  return varint64(hi, lo), hi == 0 and lo == 0
end

function writers.sint64(v)
  local hi, lo = want_int64(v, true)
  if hi >= TWO31 then
    -- Negative: zigzag is 2 * complement(n) + 1.
    hi, lo = TWO32 - 1 - hi, TWO32 - 1 - lo
    return varint64((hi * 2 + floor(lo / TWO31)) % TWO32, (lo * 2) % TWO32 + 1), false
  end
  return varint64(hi * 2 + floor(lo / TWO31), (lo * 2) % TWO32), hi == 0 and lo == 0
end

function writers.fixed32(v)
  v = want_integer(v, 0, TWO32 - 1)
  return fixed32(v), v == 0
end

function writers.sfixed32(v)
  v = want_integer(v, -TWO31, TWO31 - 1)
  return fixed32(v % TWO32), v == 0
end

function writers.fixed64(v)
  local hi, lo = want_int64(v, false)
  return fixed32(lo) .. fixed32(hi), hi == 0 and lo == 0
end

function writers.sfixed64(v)
  local hi, lo = want_int64(v, true)
  return fixed32(lo) .. fixed32(hi), hi == 0 and lo == 0
end

function writers.float(v)
  if type(v) ~= "number" then
    fail("want number, got " .. type(v))
  end
  if v == v and v ~= math.huge and v ~= -math.huge and (v >= ieee754.FLOAT_LIMIT or v <= -ieee754.FLOAT_LIMIT) then
    fail("value " .. tostring(v) .. " out of float range")
  end
  return ieee754.float(v), is_zero(v)
end

function writers.double(v)
  if type(v) ~= "number" then
    fail("want number, got " .. type(v))
  end
  return ieee754.double(v), is_zero(v)
end

function writers.string(v)
  if type(v) ~= "string" then
    fail("want string, got " .. type(v))
  end
  if not utf8check.valid(v) then
    fail("invalid UTF-8")
  end
  return varint(#v) .. v, v == ""
end

function writers.bytes(v)
  if type(v) ~= "string" then
    fail("want string, got " .. type(v))
  end
  return varint(#v) .. v, v == ""
end

local encode_message

-- State of one encode call: the field path, for errors.
local function push(st, seg)
  st.n = st.n + 1
  st.path[st.n] = seg
end

local function pop(st)
  st.path[st.n] = nil
  st.n = st.n - 1
end

-- write_value returns the bytes of one value of fd, and whether it is the default.
local function write_value(fd, v, st)
  if fd.type == "message" then
    if type(v) ~= "table" then
      fail("want table, got " .. type(v))
    end
    local b = encode_message(fd.message, v, st)
    return varint(#b) .. b, false
  end
  return writers[fd.type](v, fd)
end

-- sequence_length returns n when t has exactly the keys 1..n.
local function sequence_length(t)
  if type(t) ~= "table" then
    fail("want a sequence (table), got " .. type(t))
  end
  local n, count = #t, 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or floor(k) ~= k then
      fail("want a sequence with keys 1 to n, has key " .. tostring(k))
    end
    count = count + 1
  end
  if count ~= n then
    fail("want a sequence with keys 1 to n, has holes")
  end
  return n
end

local function bytes_less(a, b)
  if a == b then
    return false
  end
  local n = #a < #b and #a or #b
  for i = 1, n do
    local x, y = byte(a, i), byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local SIGNED64 = { int64 = true, sint64 = true, sfixed64 = true }
local UNSIGNED64 = { uint64 = true, fixed64 = true }

-- key_order returns a comparison of map keys of the given type (after conversion by key_value).
local function key_order(key_type)
  if key_type == "string" then
    return function(a, b) return bytes_less(a.k, b.k) end
  elseif key_type == "bool" then
    return function(a, b) return (not a.k) and b.k end
  elseif SIGNED64[key_type] or UNSIGNED64[key_type] then
    local signed = SIGNED64[key_type] or false
    return function(a, b) return int64.less(a.hi, a.lo, b.hi, b.lo, signed) end
  end
  return function(a, b) return a.k < b.k end
end

local function key_label(k)
  if type(k) == "string" then
    return format("[%q]", k)
  end
  return "[" .. tostring(k) .. "]"
end

local function write_map(fd, m, st)
  if type(m) ~= "table" then
    fail("want table, got " .. type(m))
  end
  local kfd, vfd = fd.key, fd.value
  local entries = {}
  for k, v in pairs(m) do
    push(st, key_label(k))
    local e = { k = k }
    push(st, "(key)")
    local kb = writers[kfd.type](k, kfd)
    if SIGNED64[kfd.type] or UNSIGNED64[kfd.type] then
      e.hi, e.lo = want_int64(k, SIGNED64[kfd.type] or false)
    end
    pop(st)
    push(st, "(value)")
    local vb = write_value(vfd, v, st)
    pop(st)
    local body = kfd.tag .. kb .. vfd.tag .. vb
    e.bytes = fd.tag .. varint(#body) .. body
    entries[#entries + 1] = e
    pop(st)
  end
  local less = key_order(kfd.type)
  sort(entries, less)
  local out = {}
  for i, e in ipairs(entries) do
    if i > 1 and not less(entries[i - 1], e) then
      push(st, key_label(e.k))
      fail("duplicate map key")
    end
    out[i] = e.bytes
  end
  return concat(out)
end

local function write_repeated(fd, list, st)
  local n = sequence_length(list)
  if n == 0 then
    return ""
  end
  local out = {}
  if fd.packed then
    for i = 1, n do
      push(st, "[" .. i .. "]")
      out[i] = writers[fd.type](list[i], fd)
      pop(st)
    end
    local data = concat(out)
    return fd.packed_tag .. varint(#data) .. data
  end
  for i = 1, n do
    push(st, "[" .. i .. "]")
    out[2 * i - 1] = fd.tag
    out[2 * i] = write_value(fd, list[i], st)
    pop(st)
  end
  return concat(out)
end

-- encode_message returns the bytes of the table t as md: fields in number order, the members of
-- oneofs after them, unknown fields (t[UNKNOWN]) last.
function encode_message(md, t, st)
  st.depth = st.depth + 1
  if st.depth > MAX_DEPTH then
    fail("tables nested more than " .. MAX_DEPTH .. " deep (does a table contain itself?)")
  end
  for k in pairs(t) do
    if md.by_name[k] == nil and k ~= UNKNOWN then
      fail(format("%s has no field %s", md.full_name, type(k) == "string" and k or "[" .. tostring(k) .. "]"))
    end
  end
  for name, members in pairs(md.oneofs) do
    local set
    for _, fd in ipairs(members) do
      if t[fd.name] ~= nil then
        if set then
          fail(format("oneof %s has both %s and %s set", name, set, fd.name))
        end
        set = fd.name
      end
    end
  end
  local out, n = {}, 0
  for _, fd in ipairs(md.encode_order) do
    local v = t[fd.name]
    if v ~= nil then
      push(st, "." .. fd.name)
      local b
      if fd.map then
        b = write_map(fd, v, st)
      elseif fd.repeated then
        b = write_repeated(fd, v, st)
      else
        local zero
        b, zero = write_value(fd, v, st)
        if zero and not fd.presence then
          b = nil
        else
          b = fd.tag .. b
        end
      end
      if b and b ~= "" then
        n = n + 1
        out[n] = b
      end
      pop(st)
    end
  end
  local unknown = t[UNKNOWN]
  if unknown ~= nil then
    if type(unknown) ~= "string" then
      push(st, "." .. UNKNOWN)
      fail("want string, got " .. type(unknown))
    end
    n = n + 1
    out[n] = unknown
  end
  st.depth = st.depth - 1
  return concat(out)
end

-- encode returns the bytes of the table t as the compiled message md, or nil and an error
-- naming the field, e.g. "demo.ArenaMoveReq.dir.x: want number, got string".
function M.encode(md, t)
  if type(t) ~= "table" then
    return nil, md.full_name .. ": want table, got " .. type(t)
  end
  local st = { path = {}, n = 0, depth = 0 }
  local ok, res = pcall(encode_message, md, t, st)
  if ok then
    return res
  end
  if type(res) == "table" and res.msg then
    return nil, md.full_name .. concat(st.path, "", 1, st.n) .. ": " .. res.msg
  end
  return nil, md.full_name .. ": " .. tostring(res)
end

return M
