-- The KCP transport (see moonforge.transport): the protocol's TCP byte stream carried in a KCP
-- conversation (moonforge.kcp) over a LuaSocket UDP socket, non-blocking, driven by the client's
-- update(). KCP has no handshake and no close: connecting only opens the socket, a Kick from the
-- server ends the conversation (ends_on_kick), and a server that went away shows as silence,
-- which the client's heartbeat notices.
local kcp = require("moonforge.kcp")

local M = {}
M.__index = M
M.ends_on_kick = true

-- MAX_DATAGRAMS is the most datagrams one receive() takes from the socket.
local MAX_DATAGRAMS = 512
-- MAX_WAITING is the most segments queued or in flight before send() accepts no more.
local MAX_WAITING = 1024

local conv_counter = 0

-- new_conv returns a random non-zero 32-bit conversation id.
local function new_conv(socket)
  conv_counter = conv_counter + 1
  local t = socket.gettime and socket.gettime() or os.time()
  local hi = (math.random(0, 65535) + math.floor(t * 1000003) + conv_counter * 7919) % 65536
  local lo = (math.random(0, 65535) + math.floor(t * 1e6)) % 65536
  local conv = hi * 65536 + lo
  if conv == 0 then
    conv = 1
  end
  return conv
end

-- new returns an unconnected transport. options.socket is the LuaSocket module (default
-- require("socket")).
function M.new(options)
  local socket = options and options.socket or require("socket")
  return setmetatable({ socket = socket, sock = nil }, M)
end

function M:_now_ms()
  return self.socket.gettime() * 1000
end

function M:connect(host, port)
  self:close()
  local sock, err
  if string.find(host, ":", 1, true) and self.socket.udp6 then
    sock, err = self.socket.udp6()
  else
    sock, err = self.socket.udp()
  end
  if not sock then
    return nil, err
  end
  sock:settimeout(0)
  local ok
  ok, err = sock:setpeername(host, port)
  if not ok then
    sock:close()
    return nil, err
  end
  self.sock = sock
  self.kcp = kcp.new({
    conv = new_conv(self.socket),
    output = function(datagram) sock:send(datagram) end,
  })
  self.conv = self.kcp.conv
  return true
end

function M:poll_connect()
  if not self.sock then
    return nil, "not connecting"
  end
  return "connected"
end

function M:send(data)
  if not self.sock then
    return nil, "closed"
  end
  local room = (MAX_WAITING - self.kcp:waiting()) * self.kcp.mss
  if room <= 0 then
    return 0
  end
  if #data > room then
    data = string.sub(data, 1, room)
  end
  self.kcp:send(data)
  self.kcp.current = math.floor(self:_now_ms()) % 4294967296
  self.kcp:flush()
  return #data
end

function M:receive()
  if not self.sock then
    return "", "closed"
  end
  for _ = 1, MAX_DATAGRAMS do
    local datagram, err = self.sock:receive()
    if not datagram then
      if err ~= "timeout" and err ~= "connection refused" then
        return self.kcp:recv(), err
      end
      break
    end
    self.kcp:input(datagram)
  end
  self.kcp:update(self:_now_ms())
  if self.kcp.dead then
    return self.kcp:recv(), "kcp: no acknowledgement after 20 transmissions"
  end
  return self.kcp:recv()
end

function M:wait(seconds)
  if self.sock then
    self.socket.select({ self.sock }, nil, math.min(seconds, self.kcp.interval / 1000))
  else
    self.socket.sleep(seconds)
  end
end

function M:close()
  if self.sock then
    self.sock:close()
  end
  self.sock, self.kcp = nil, nil
end

return M
