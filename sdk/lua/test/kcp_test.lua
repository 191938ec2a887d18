-- KCP in pure Lua (moonforge/kcp.lua) without sockets: two ends over a simulated link that loses,
-- duplicates and reorders datagrams deliver byte streams intact and in order both ways; junk
-- datagrams are refused without an error; segments have kcp-go's layout.
-- Usage: lua kcp_test.lua
local dir = string.match(arg[0], "^(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path

local T = require("testing")
local kcp = require("moonforge.kcp")

-- A deterministic random source (an LCG), the same on every Lua version.
local function lcg(seed)
  local state = seed
  return function()
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648
  end
end

local function pattern(n, salt)
  local parts = {}
  for i = 1, n do
    parts[i] = string.char((i * 7 + salt) % 256)
  end
  return table.concat(parts)
end

-- link runs two ends that each send data and returns what each received.
local function link(loss, dup, reorder, a_data, b_data)
  local rnd = lcg(15)
  local wire = {} -- datagrams in flight: { at = ms, to = end, data = string }
  local now = 0
  local a, b
  local function sender(to)
    return function(d)
      if rnd() < loss then return end
      local at = now + 1
      if rnd() < reorder then at = at + 25 end
      wire[#wire + 1] = { at = at, to = to, data = d }
      if rnd() < dup then wire[#wire + 1] = { at = at + 2, to = to, data = d } end
    end
  end
  a = kcp.new({ conv = 0x12345678, output = sender("b") })
  b = kcp.new({ conv = 0x12345678, output = sender("a") })
  local got = { a = {}, b = {} }
  local sent_a, sent_b = 1, 1
  for _ = 1, 20000 do
    now = now + 5
    -- the application writes in pieces of varying size while the window has room
    if sent_a <= #a_data and a:waiting() < 300 then
      a:send(string.sub(a_data, sent_a, sent_a + 3000))
      sent_a = sent_a + 3001
    end
    if sent_b <= #b_data and b:waiting() < 300 then
      b:send(string.sub(b_data, sent_b, sent_b + 700))
      sent_b = sent_b + 701
    end
    local due, later = {}, {}
    for _, d in ipairs(wire) do
      if d.at <= now then due[#due + 1] = d else later[#later + 1] = d end
    end
    wire = later
    for _, d in ipairs(due) do
      local ok = (d.to == "a" and a or b):input(d.data)
      T.check(ok, "a well-formed datagram refused")
    end
    a:update(now)
    b:update(now)
    got.a[#got.a + 1] = a:recv()
    got.b[#got.b + 1] = b:recv()
    T.check(not a.dead and not b.dead, "the link died")
    if sent_a > #a_data and sent_b > #b_data and a:waiting() == 0 and b:waiting() == 0 then
      break
    end
  end
  return table.concat(got.b), table.concat(got.a)
end

for _, loss in ipairs({ 0, 0.05, 0.2 }) do
  T.test("streams both ways intact at " .. loss * 100 .. "% loss", function()
    local a_data, b_data = pattern(200000, 1), pattern(50000, 3)
    local at_b, at_a = link(loss, 0.02, 0.05, a_data, b_data)
    T.equal(#at_b, #a_data, "bytes a to b")
    T.check(at_b == a_data, "the stream from a to b changed")
    T.equal(#at_a, #b_data, "bytes b to a")
    T.check(at_a == b_data, "the stream from b to a changed")
  end)
end

T.test("junk datagrams are refused, and the conversation goes on", function()
  local out = {}
  local k = kcp.new({ conv = 7, output = function(d) out[#out + 1] = d end })
  local rnd = lcg(3)
  for _ = 1, 2000 do
    local n = math.floor(rnd() * 80)
    local parts = {}
    for i = 1, n do parts[i] = string.char(math.floor(rnd() * 256)) end
    k:input(table.concat(parts))
  end
  -- a datagram of conversation 7 with a length field past the end
  T.check(not k:input("\7\0\0\0\81\0\0\1" .. string.rep("\0", 12) .. "\200\0\0\0" .. "x"), "truncated segment accepted")
  k:send("after the junk")
  k:update(1000)
  T.check(#out >= 1, "nothing sent after the junk")
end)

T.test("segments have kcp-go's layout", function()
  local out = {}
  local k = kcp.new({ conv = 0x01020304, output = function(d) out[#out + 1] = d end })
  k:send("hello")
  k:update(5)
  local d = out[1]
  T.equal(#d, 24 + 5, "datagram length")
  T.equal(T.hex(string.sub(d, 1, 4)), "04030201", "conv, little-endian")
  T.equal(string.byte(d, 5), 81, "cmd PUSH")
  T.equal(string.byte(d, 6), 0, "frg")
  T.equal(T.hex(string.sub(d, 7, 8)), "0001", "wnd 256")
  T.equal(T.hex(string.sub(d, 13, 16)), "00000000", "sn 0")
  T.equal(T.hex(string.sub(d, 21, 24)), "05000000", "len 5")
  T.equal(string.sub(d, 25), "hello", "data")
end)

T.run("kcp")
