-- The TCP transport (see moonforge.transport) on LuaSocket, non-blocking: the socket has a zero
-- timeout, so connect, send and receive return at once with what could be done.
local M = {}
M.__index = M

-- READ_SIZE is the most receive asks LuaSocket for at once.
local READ_SIZE = 65536

-- again reports whether a non-blocking call only has to be repeated later: LuaSocket says
-- "timeout", LuaSec (moonforge.tls_transport) "wantread" or "wantwrite".
local function again(err)
  return err == "timeout" or err == "wantread" or err == "wantwrite"
end
M.again = again

-- new returns an unconnected transport. options.socket is the LuaSocket module (default
-- require("socket")).
function M.new(options)
  local socket = options and options.socket or require("socket")
  return setmetatable({ socket = socket, sock = nil }, M)
end

function M:connect(host, port)
  self:close()
  local sock, err
  if string.find(host, ":", 1, true) and self.socket.tcp6 then
    sock, err = self.socket.tcp6()
  else
    sock, err = self.socket.tcp()
  end
  if not sock then
    return nil, err
  end
  sock:settimeout(0)
  sock:setoption("tcp-nodelay", true)
  self.sock, self.host, self.port = sock, host, port
  local ok
  ok, err = sock:connect(host, port)
  if ok or err == "timeout" or err == "Operation already in progress" then
    self.connected = ok and true or false
    return true
  end
  self:close()
  return nil, err
end

function M:poll_connect()
  if not self.sock then
    return nil, "not connecting"
  end
  if self.connected then
    return "connected"
  end
  local _, writable = self.socket.select(nil, { self.sock }, 0)
  if not writable or #writable == 0 then
    return "pending"
  end
  -- Connecting again reports how the first attempt ended.
  local ok, err = self.sock:connect(self.host, self.port)
  if ok or err == "already connected" then
    self.connected = true
    return "connected"
  end
  if err == "timeout" or err == "Operation already in progress" then
    return "pending"
  end
  return nil, err
end

function M:send(data)
  if not self.sock then
    return nil, "closed"
  end
  local last, err, partial = self.sock:send(data)
  if last then
    return last
  end
  if again(err) then
    return partial or 0
  end
  return nil, err
end

function M:receive()
  if not self.sock then
    return "", "closed"
  end
  local data, err, partial = self.sock:receive(READ_SIZE)
  if data then
    return data
  end
  if again(err) then
    return partial or ""
  end
  return partial or "", err
end

function M:wait(seconds)
  if self.sock and self.connected then
    self.socket.select({ self.sock }, nil, seconds)
  else
    self.socket.sleep(seconds)
  end
end

function M:close()
  if self.sock then
    self.sock:close()
  end
  self.sock, self.connected, self.handshaken = nil, false, false
end

return M
