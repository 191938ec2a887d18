-- Codec and frame tests against the conformance vectors of tests/vectors, and unit tests of the
-- numeric layers. Usage: lua codec_test.lua <tests/vectors directory>
local dir = string.match(arg[0], "^(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path

local T = require("testing")
local json = require("json")
local mf = require("moonforge")
local int64 = require("moonforge.int64")
local ieee754 = require("moonforge.ieee754")
local frame = require("moonforge.frame")
local codec = require("moonforge.lua_codec").new()

local vectors_dir = assert(arg[1], "usage: lua codec_test.lua <tests/vectors directory>")
local schema = mf.Schema.new(require("conformance_schema"))
local messages = json.read_file(vectors_dir .. "/messages.json")
local frames = json.read_file(vectors_dir .. "/frames.json")

-- base64 decodes standard base64 (protojson's bytes).
local function base64(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local out, bits, nbits = {}, 0, 0
  for c in string.gmatch(s, "[^=]") do
    bits = bits * 64 + (string.find(alphabet, c, 1, true) - 1)
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      local b = math.floor(bits / 2 ^ nbits)
      out[#out + 1] = string.char(b)
      bits = bits - b * 2 ^ nbits
    end
  end
  return table.concat(out)
end

local function is_nan(v)
  return v ~= v
end

-- same_scalar compares a decoded value with its protojson form.
local function same_scalar(ftype, got, want, enum)
  if ftype == "float" or ftype == "double" then
    if want == "NaN" then
      return type(got) == "number" and is_nan(got)
    elseif want == "Infinity" then
      return got == math.huge
    elseif want == "-Infinity" then
      return got == -math.huge
    end
    if type(got) ~= "number" then
      return false
    end
    if want == 0 then
      return got == 0 and (1 / got > 0) == (1 / want > 0)
    end
    if ftype == "float" then
      return ieee754.float(got) == ieee754.float(want)
    end
    return got == want
  elseif ftype == "int64" or ftype == "uint64" or ftype == "sint64" or ftype == "fixed64" or ftype == "sfixed64" then
    if type(got) == "number" then
      if math.type and math.type(got) ~= "integer" then
        return false
      end
      if not int64.NATIVE and math.abs(got) > 2 ^ 53 then
        return false
      end
      got = int64.format(got)
    elseif type(got) == "string" then
      -- A string only where a number cannot hold the value exactly.
      local n = tonumber(got)
      if int64.NATIVE then
        if not (n and n > 2 ^ 63 - 1024) then
          return false
        end
      elseif not (n and math.abs(n) >= 2 ^ 53) then
        return false
      end
    else
      return false
    end
    return got == want
  elseif ftype == "bytes" then
    return got == base64(want)
  elseif ftype == "enum" then
    return got == want or (type(want) == "number" and enum.by_number[want] == got)
  end
  if type(got) == "number" and math.type and math.type(got) ~= "integer" then
    return false
  end
  return got == want
end

local compare_message

local function compare_value(fd, got, want, path)
  if fd.type == "message" then
    compare_message(fd.message, got, want, path)
  elseif not same_scalar(fd.type, got, want, fd.enum) then
    error(string.format("%s: decoded %s (%s), protojson says %s", path, tostring(got), type(got), tostring(want)), 0)
  end
end

local function map_key(ktype, k)
  if ktype == "bool" then
    return tostring(k)
  elseif type(k) == "number" then
    return int64.format(k)
  end
  return k
end

-- compare_message checks a decoded table against protojson (fields at their default left out).
function compare_message(md, got, want, path)
  T.check(type(got) == "table", path .. ": want a table, got", type(got))
  for k in pairs(got) do
    T.check(md.by_name[k] ~= nil or k == mf.codec.UNKNOWN, path .. ": unexpected key", k)
  end
  for _, fd in ipairs(md.fields) do
    local g, w = got[fd.name], want[fd.name]
    local p = path .. "." .. fd.name
    if fd.map then
      T.check(type(g) == "table", p .. ": map missing")
      local seen = 0
      for k, v in pairs(g) do
        local key = map_key(fd.key.type, k)
        T.check(w ~= nil and w[key] ~= nil, p .. ": unexpected key", key)
        compare_value(fd.value, v, w[key], p .. "[" .. key .. "]")
        seen = seen + 1
      end
      local expected = 0
      for _ in pairs(w or {}) do
        expected = expected + 1
      end
      T.equal(seen, expected, p .. " entries")
    elseif fd.repeated then
      T.check(type(g) == "table", p .. ": list missing")
      w = w or {}
      T.equal(#g, #w, p .. " length")
      for i = 1, #w do
        compare_value(fd, g[i], w[i], p .. "[" .. i .. "]")
      end
    elseif w == nil then
      if fd.presence then
        T.check(g == nil, p .. ": want absent, got", g)
      elseif fd.type == "enum" then
        T.equal(g, fd.enum.zero, p)
      elseif fd.type == "float" or fd.type == "double" then
        T.check(g == 0 and 1 / g > 0, p .. ": want 0, got", g)
      else
        T.equal(g, fd.default, p)
      end
    else
      compare_value(fd, g, w, p)
    end
  end
end

local valid, invalid = 0, 0
for _, v in ipairs(messages) do
  T.test("message " .. v.name, function()
    local md = assert(schema:message(v.type), v.type)
    local bytes = T.unhex(v.hex)
    local ok, t, err = pcall(codec.decode, md, bytes)
    T.check(ok, "decode raised:", t)
    if not v.valid then
      invalid = invalid + 1
      T.check(t == nil and type(err) == "string", "decoded an invalid vector without an error")
      return
    end
    valid = valid + 1
    T.check(t ~= nil, "decode:", err)
    compare_message(md, t, v.json, v.type)
    local again, eerr = codec.encode(md, t)
    T.check(again, "encode:", eerr)
    T.equal(T.hex(again), v.hex, "re-encoded")
  end)
end

for _, v in ipairs(frames) do
  T.test("frame " .. v.name, function()
    local bytes = T.unhex(v.hex)
    -- Whole, then one byte at a time (partial reads).
    for _, step in ipairs({ #bytes, 1 }) do
      local r = frame.new_reader()
      local f, err
      for i = 1, #bytes, step do
        r:feed(string.sub(bytes, i, i + step - 1))
        f, err = r:next()
        if f or err then
          T.check(i + step - 1 >= #bytes or not v.valid, "frame complete before its last byte")
          break
        end
      end
      if v.valid then
        T.check(f, "no frame:", err and tostring(err))
        T.equal(f.msg_id, v.msg_id, "msg_id")
        T.equal(f.flags, v.flags, "flags")
        T.equal(f.seq, v.seq, "seq")
        T.equal(T.hex(f.payload), v.payload_hex, "payload")
        T.equal(r:buffered(), 0, "bytes left")
        T.equal(T.hex(frame.encode(v.msg_id, v.flags, v.seq, T.unhex(v.payload_hex))), v.hex, "encoded")
      else
        T.check(f == nil and err, "accepted an invalid frame")
        T.equal(err.name, v.error, "error")
        T.check(r:next() == nil, "reader went on after an error")
      end
    end
  end)
end

T.test("frames back to back in one stream", function()
  local stream, want = {}, {}
  for _, v in ipairs(frames) do
    if v.valid then
      stream[#stream + 1] = T.unhex(v.hex)
      want[#want + 1] = v
    end
  end
  local all = table.concat(stream)
  local r = frame.new_reader()
  local got = {}
  -- Pieces of 7 bytes cut across every frame boundary.
  for i = 1, #all, 7 do
    r:feed(string.sub(all, i, i + 6))
    while true do
      local f, err = r:next()
      T.check(not err, "error:", err and tostring(err))
      if not f then break end
      got[#got + 1] = f
    end
  end
  T.equal(#got, #want, "frames")
  for i, v in ipairs(want) do
    T.equal(got[i].seq, v.seq, v.name .. " seq")
    T.equal(T.hex(got[i].payload), v.payload_hex, v.name .. " payload")
  end
end)

T.test("a frame above a smaller maximum is FRAME_TOO_LARGE", function()
  local r = frame.new_reader(100)
  r:feed(frame.encode(1, 0, 1, string.rep("x", 93)))
  local f, err = r:next()
  T.check(f == nil and err, "accepted")
  T.equal(err.code, mf.ErrorCode.FRAME_TOO_LARGE, "code")
  r = frame.new_reader(100)
  r:feed(frame.encode(1, 0, 1, string.rep("x", 92)))
  T.check(r:next(), "refused a frame of exactly the maximum")
end)

T.test("vectors were all run", function()
  T.check(valid >= 50 and invalid >= 30, "too few vectors:", valid, invalid)
end)

-- Unit tests of the layers under the codec.

T.test("int64 values and their Lua form", function()
  local cases = {
    -- hi, lo, signed value, unsigned value (Lua 5.1/5.2 form; 5.3+ form is the integer)
    { 0, 0, "0", "0" },
    { 0, 1, "1", "1" },
    { 2097152, 0, "9007199254740992", "9007199254740992" },
    { 2097152, 1, "9007199254740993", "9007199254740993" },
    { 4294967295, 4294967295, "-1", "18446744073709551615" },
    { 2147483648, 0, "-9223372036854775808", "9223372036854775808" },
    { 2147483647, 4294967295, "9223372036854775807", "9223372036854775807" },
    { 4292870143, 4294967295, "-9007199254740993", "18437736874454810623" },
  }
  for _, c in ipairs(cases) do
    local s, u = int64.signed(c[1], c[2]), int64.unsigned(c[1], c[2])
    T.equal(type(s) == "number" and int64.format(s) or s, c[3], "signed " .. c[3])
    T.equal(type(u) == "number" and int64.format(u) or u, c[4], "unsigned " .. c[4])
    local hi, lo = int64.from_value(c[3], true)
    T.check(hi == c[1] and lo == c[2], "from_value", c[3], hi, lo)
    hi, lo = int64.from_value(c[4], false)
    T.check(hi == c[1] and lo == c[2], "from_value", c[4], hi, lo)
    hi, lo = int64.from_value(s, true)
    T.check(hi == c[1] and lo == c[2], "from_value of the Lua value", c[3], hi, lo)
  end
  T.check(not int64.from_value("9223372036854775808", true), "accepted 2^63 as int64")
  T.check(not int64.from_value("-9223372036854775809", true), "accepted -2^63-1 as int64")
  T.check(not int64.from_value("18446744073709551616", false), "accepted 2^64 as uint64")
  T.check(not int64.from_value(-1, false), "accepted -1 as uint64")
  T.check(not int64.from_value(1.5, true), "accepted 1.5")
  T.check(not int64.from_value("12a", true), "accepted 12a")
  T.check(not int64.from_value(0 / 0, true), "accepted NaN")
end)

T.test("ieee754 round trips and rounding", function()
  local values = { 0, 1, -1, 0.1, 1 / 3, 1e-45, 1.4e-45, 5e-324, 2.2250738585072014e-308, 1.1754942e-38,
    3.4028234e38, -3.4028235e38, 16777217, 16777219, 1e30, 123.456, math.huge, -math.huge, 2 ^ -149 * 1.5,
    2 ^ -149 * 0.5, 2 ^ -150 * 1.0000001 }
  local impls = { ieee754 }
  if ieee754.pure and string.pack then
    impls[2] = ieee754.pure
  end
  for _, v in ipairs(values) do
    for _, impl in ipairs(impls) do
      local d = impl.double(v)
      T.equal(#d, 8, "double size")
      local back = impl.read_double(d, 1)
      T.check(back == v, "double round trip", v, back)
      if string.pack then
        T.equal(T.hex(d), T.hex(string.pack("<d", v)), "double bits of " .. tostring(v))
        if math.abs(v) < 3.4028235677973366e38 or math.abs(v) == math.huge then
          T.equal(T.hex(impl.float(v)), T.hex(string.pack("<f", v)), "float bits of " .. tostring(v))
        end
      end
    end
  end
  T.equal(T.hex(ieee754.float(0 / 0)), "0000c07f", "float NaN")
  T.equal(T.hex(ieee754.double(-(0 / 0))), "000000000000f87f", "double NaN")
  local zero = 0.0
  T.equal(T.hex(ieee754.double(-zero)), "0000000000000080", "-0")
  T.check(1 / ieee754.read_double(ieee754.double(-zero), 1) < 0, "-0 lost its sign")
end)

T.test("encode errors name the field and never raise", function()
  local scalars = schema:message("conformance.Scalars")
  local cases = {
    { scalars, { i32 = "x" }, "conformance.Scalars.i32: want number, got string" },
    { scalars, { i32 = 1.5 }, "conformance.Scalars.i32: want an integer" },
    { scalars, { i32 = 2147483648 }, "conformance.Scalars.i32: value 2147483648 out of range" },
    { scalars, { u32 = -1 }, "conformance.Scalars.u32: value -1 out of range" },
    { scalars, { u64 = "-1" }, "conformance.Scalars.u64: value -1 out of range" },
    { scalars, { s = "\255" }, "conformance.Scalars.s: invalid UTF-8" },
    { scalars, { color = "PURPLE" }, "conformance.Scalars.color: \"PURPLE\" is not a value of conformance.Color" },
    { scalars, { fl = 1e39 }, "conformance.Scalars.fl: value" },
    { scalars, { nope = 1 }, "conformance.Scalars: conformance.Scalars has no field nope" },
    { scalars, { b = 1 }, "conformance.Scalars.b: want boolean, got number" },
    { schema:message("conformance.Repeats"), { leaves = { {}, { name = 5 } } }, "conformance.Repeats.leaves[2].name: want string, got number" },
    { schema:message("conformance.Repeats"), { i32 = { 1, nil, 3 } }, "conformance.Repeats.i32: want a sequence" },
    { schema:message("conformance.Maps"), { i32_leaf = { [3] = { id = "x" } } }, "conformance.Maps.i32_leaf[3](value).id: want number, got string" },
    { schema:message("conformance.Maps"), { ss = { [1] = "x" } }, "conformance.Maps.ss[1](key): want string, got number" },
    { schema:message("conformance.Maps"), { i64_db = { [5] = 1, ["5"] = 2 } }, "conformance.Maps.i64_db[" },
    { schema:message("conformance.Choice"), { num = 1, text = "x" }, "conformance.Choice: oneof pick has both" },
  }
  local loop = {}
  loop.middle = { inner = {} }
  local inner = loop.middle.inner
  inner.children = { inner }
  cases[#cases + 1] = { schema:message("conformance.Outer"), loop, "nested more than 100 deep" }
  for _, c in ipairs(cases) do
    local ok, b, err = pcall(codec.encode, c[1], c[2])
    T.check(ok, "encode raised:", b)
    T.check(b == nil and err, "encoded a bad table for", c[3])
    T.check(string.find(err, c[3], 1, true), "error", err, "does not contain", c[3])
  end
end)

T.test("64-bit fields take numbers and decimal strings alike", function()
  local md = schema:message("conformance.Scalars")
  local a = codec.encode(md, { i64 = "-5", u64 = "18446744073709551615", sf64 = -9007199254740992 })
  local b = codec.encode(md, { i64 = -5, u64 = "18446744073709551615", sf64 = "-9007199254740992" })
  T.check(a and a == b, "different bytes", a and T.hex(a), b and T.hex(b))
end)

T.test("decoding merges repeated occurrences as protobuf-go does", function()
  local md = schema:message("conformance.Choice")
  -- leaf{id 1}, then leaf{name "n"} merges; then num 3 replaces the leaf; after="a" twice, last wins.
  local t = assert(codec.decode(md, T.unhex("3202080132031201" .. "6e" .. "1003" .. "420178" .. "420161")))
  T.check(t.leaf == nil and t.num == 3 and t.after == "a", "got", t.leaf, t.num, t.after)
  t = assert(codec.decode(md, T.unhex("3202080132031201" .. "6e")))
  T.check(t.leaf and t.leaf.id == 1 and t.leaf.name == "n", "leaf not merged")
  -- A packed field sent unpacked, and an unpacked one sent packed, both decode.
  local r = schema:message("conformance.Repeats")
  t = assert(codec.decode(r, T.unhex("0801" .. "0802" .. "9201020304")))
  T.check(#t.i32 == 2 and t.i32[2] == 2 and #t.unpacked_i32 == 2 and t.unpacked_i32[2] == 4, "packing not accepted")
end)

T.run("codec")
