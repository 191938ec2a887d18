-- KCP, the ARQ protocol that Moonforge's KCP transport runs over UDP, in pure Lua (5.1 to 5.4):
-- the client side of one conversation, interoperating with xtaci/kcp-go v5. No sockets here:
-- input() takes datagrams, output (a function given to new) sends them, update() runs the timers.
--
-- Segment (little-endian): conv u32, cmd u8, frg u8, wnd u16, ts u32, sn u32, una u32, len u32,
-- then len bytes. The settings are the protocol's (docs/protocol.md, "KCP"): stream mode off,
-- MTU 1400, windows of 256, no-delay mode (interval 10 ms, fast resend 2, no congestion window).
-- Received data is handed out as one byte stream, in order: message boundaries do not matter to
-- the frames it carries.
local M = {}
M.__index = M

local CMD_PUSH, CMD_ACK, CMD_WASK, CMD_WINS = 81, 82, 83, 84
local OVERHEAD = 24
local RTO_MIN, RTO_DEF, RTO_MAX = 30, 200, 60000 -- ms; 30 is the no-delay minimum
local PROBE_INIT, PROBE_LIMIT = 7000, 120000
local DEAD_LINK = 20 -- transmissions of one segment before the link counts as dead
local FAST_LIMIT = 5
local TWO32, TWO31 = 4294967296, 2147483648

-- diff returns a - b for 32-bit sequence numbers and timestamps that may wrap.
local function diff(a, b)
  local d = (a - b) % TWO32
  if d >= TWO31 then
    d = d - TWO32
  end
  return d
end

local function u32(n)
  n = n % TWO32
  local b1 = n % 256
  n = (n - b1) / 256
  local b2 = n % 256
  n = (n - b2) / 256
  local b3 = n % 256
  return string.char(b1, b2, b3, (n - b3) / 256)
end

local function u16(n)
  n = n % 65536
  return string.char(n % 256, math.floor(n / 256))
end

local function read_u32(s, i)
  local a, b, c, d = string.byte(s, i, i + 3)
  return a + b * 256 + c * 65536 + d * 16777216
end

-- new returns a conversation. options: conv (required, non-zero), output (function(datagram)),
-- mtu (1400), snd_wnd and rcv_wnd (256), interval (10 ms), resend (2).
function M.new(options)
  local mtu = options.mtu or 1400
  local self = setmetatable({
    conv = options.conv,
    output = options.output,
    mtu = mtu,
    mss = mtu - OVERHEAD,
    snd_wnd = options.snd_wnd or 256,
    rcv_wnd = options.rcv_wnd or 256,
    rmt_wnd = options.rcv_wnd or 256,
    interval = options.interval or 10,
    fastresend = options.resend or 2,
    snd_una = 0,
    snd_nxt = 0,
    rcv_nxt = 0,
    rx_srtt = 0,
    rx_rttval = 0,
    rx_rto = RTO_DEF,
    current = 0,
    ts_flush = 0,
    probe = false,
    probe_wait = 0,
    ts_probe = 0,
    snd_queue = {}, -- data waiting for the window: strings of at most mss bytes
    snd_buf = {},   -- segments in flight, by sn order
    rcv_buf = {},   -- sn -> data received ahead of rcv_nxt
    rcv_count = 0,
    received = {},  -- data in order, for recv()
    acklist = {},   -- pairs sn, ts
    dead = false,
  }, M)
  return self
end

-- send queues bytes (any length) for the peer.
function M:send(data)
  local q, mss = self.snd_queue, self.mss
  for i = 1, #data, mss do
    q[#q + 1] = string.sub(data, i, i + mss - 1)
  end
end

-- waiting returns the number of segments queued or in flight.
function M:waiting()
  return #self.snd_queue + #self.snd_buf
end

-- recv returns the bytes received in order since the last call ("" if none).
function M:recv()
  if #self.received == 0 then
    return ""
  end
  local s = table.concat(self.received)
  self.received = {}
  return s
end

function M:_update_ack(rtt)
  if self.rx_srtt == 0 then
    self.rx_srtt = rtt
    self.rx_rttval = rtt / 2
  else
    local delta = math.abs(rtt - self.rx_srtt)
    self.rx_rttval = (3 * self.rx_rttval + delta) / 4
    self.rx_srtt = math.max(1, (7 * self.rx_srtt + rtt) / 8)
  end
  local rto = self.rx_srtt + math.max(self.interval, 4 * self.rx_rttval)
  self.rx_rto = math.min(math.max(math.floor(rto), RTO_MIN), RTO_MAX)
end

function M:_shrink_buf()
  local first = self.snd_buf[1]
  self.snd_una = first and first.sn or self.snd_nxt
end

function M:_parse_una(una)
  local buf, keep = self.snd_buf, {}
  for _, seg in ipairs(buf) do
    if diff(una, seg.sn) <= 0 then
      keep[#keep + 1] = seg
    end
  end
  self.snd_buf = keep
end

function M:_parse_ack(sn)
  if diff(sn, self.snd_una) < 0 or diff(sn, self.snd_nxt) >= 0 then
    return
  end
  local buf = self.snd_buf
  for i, seg in ipairs(buf) do
    if seg.sn == sn then
      table.remove(buf, i)
      return
    end
    if diff(sn, seg.sn) < 0 then
      return
    end
  end
end

function M:_parse_fastack(sn)
  if diff(sn, self.snd_una) < 0 or diff(sn, self.snd_nxt) >= 0 then
    return
  end
  for _, seg in ipairs(self.snd_buf) do
    if diff(sn, seg.sn) < 0 then
      return
    elseif sn ~= seg.sn then
      seg.fastack = seg.fastack + 1
    end
  end
end

function M:_parse_data(sn, data)
  if diff(sn, self.rcv_nxt + self.rcv_wnd) >= 0 or diff(sn, self.rcv_nxt) < 0 then
    return
  end
  if self.rcv_buf[sn] == nil then
    self.rcv_buf[sn] = data
    self.rcv_count = self.rcv_count + 1
  end
  local received = self.received
  while true do
    local d = self.rcv_buf[self.rcv_nxt]
    if d == nil then
      break
    end
    self.rcv_buf[self.rcv_nxt] = nil
    self.rcv_count = self.rcv_count - 1
    received[#received + 1] = d
    self.rcv_nxt = (self.rcv_nxt + 1) % TWO32
  end
end

-- input takes one datagram from the peer; it returns false for one that is not whole segments
-- of this conversation (dropped).
function M:input(data)
  local n, i = #data, 1
  if n < OVERHEAD then
    return false
  end
  local maxack, got_ack = 0, false
  while n - i + 1 >= OVERHEAD do
    local conv = read_u32(data, i)
    if conv ~= self.conv then
      return false
    end
    local cmd, _, w1, w2 = string.byte(data, i + 4, i + 7)
    local ts = read_u32(data, i + 8)
    local sn = read_u32(data, i + 12)
    local una = read_u32(data, i + 16)
    local len = read_u32(data, i + 20)
    i = i + OVERHEAD
    if n - i + 1 < len or cmd < CMD_PUSH or cmd > CMD_WINS then
      return false
    end
    self.rmt_wnd = w1 + w2 * 256
    self:_parse_una(una)
    self:_shrink_buf()
    if cmd == CMD_ACK then
      if diff(self.current, ts) >= 0 then
        self:_update_ack(diff(self.current, ts))
      end
      self:_parse_ack(sn)
      self:_shrink_buf()
      if not got_ack or diff(sn, maxack) > 0 then
        maxack, got_ack = sn, true
      end
    elseif cmd == CMD_PUSH then
      if diff(sn, self.rcv_nxt + self.rcv_wnd) < 0 then
        local a = self.acklist
        a[#a + 1] = sn
        a[#a + 1] = ts
        self:_parse_data(sn, string.sub(data, i, i + len - 1))
      end
    elseif cmd == CMD_WASK then
      self.probe = true -- tell the peer our window
    end
    i = i + len
  end
  if got_ack then
    self:_parse_fastack(maxack)
  end
  return true
end

function M:_wnd_unused()
  return math.max(0, self.rcv_wnd - self.rcv_count)
end

local function encode(conv, cmd, wnd, ts, sn, una, data)
  return u32(conv) .. string.char(cmd, 0) .. u16(wnd) .. u32(ts) .. u32(sn) .. u32(una) .. u32(#data) .. data
end

-- flush sends acks, window probes, new data within the windows, and what is due again.
function M:flush()
  local current, wnd, una = self.current, self:_wnd_unused(), self.rcv_nxt
  local out, size = {}, 0
  local function put(seg)
    if size + #seg > self.mtu then
      self.output(table.concat(out))
      out, size = {}, 0
    end
    out[#out + 1] = seg
    size = size + #seg
  end
  local a = self.acklist
  for k = 1, #a, 2 do
    put(encode(self.conv, CMD_ACK, wnd, a[k + 1], a[k], una, ""))
  end
  self.acklist = {}

  if self.rmt_wnd == 0 then
    if self.probe_wait == 0 then
      self.probe_wait = PROBE_INIT
      self.ts_probe = current + self.probe_wait
    elseif diff(current, self.ts_probe) >= 0 then
      self.probe_wait = math.min(PROBE_LIMIT, self.probe_wait + self.probe_wait / 2)
      self.ts_probe = current + self.probe_wait
      put(encode(self.conv, CMD_WASK, wnd, 0, 0, una, ""))
    end
  else
    self.probe_wait, self.ts_probe = 0, 0
  end
  if self.probe then
    put(encode(self.conv, CMD_WINS, wnd, 0, 0, una, ""))
    self.probe = false
  end

  local cwnd = math.min(self.snd_wnd, self.rmt_wnd)
  local q = self.snd_queue
  local moved = 0
  while moved < #q and diff(self.snd_nxt, self.snd_una + cwnd) < 0 do
    moved = moved + 1
    self.snd_buf[#self.snd_buf + 1] = { sn = self.snd_nxt, data = q[moved], xmit = 0, rto = self.rx_rto, resendts = 0, fastack = 0 }
    self.snd_nxt = (self.snd_nxt + 1) % TWO32
  end
  if moved > 0 then
    local rest = {}
    for k = moved + 1, #q do
      rest[#rest + 1] = q[k]
    end
    self.snd_queue = rest
  end

  for _, seg in ipairs(self.snd_buf) do
    local send = false
    if seg.xmit == 0 then
      send = true
      seg.rto = self.rx_rto
      seg.resendts = current + seg.rto
    elseif diff(current, seg.resendts) >= 0 then
      send = true
      seg.rto = seg.rto + math.floor(seg.rto / 2)
      seg.resendts = current + seg.rto
    elseif seg.fastack >= self.fastresend and seg.xmit <= FAST_LIMIT then
      send = true
      seg.fastack = 0
      seg.resendts = current + seg.rto
    end
    if send then
      seg.xmit = seg.xmit + 1
      if seg.xmit >= DEAD_LINK then
        self.dead = true
      end
      put(encode(self.conv, CMD_PUSH, wnd, current, seg.sn, una, seg.data))
    end
  end
  if size > 0 then
    self.output(table.concat(out))
  end
end

-- update sets the clock (milliseconds, any origin) and flushes when an interval has passed or
-- acks wait.
function M:update(now_ms)
  self.current = math.floor(now_ms) % TWO32
  if #self.acklist > 0 or diff(self.current, self.ts_flush) >= 0 then
    self.ts_flush = (self.current + self.interval) % TWO32
    self:flush()
  end
end

return M
