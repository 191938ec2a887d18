-- Transport: the byte stream under a client. A transport object has
--
--   t:connect(host, port)  -> true | nil, message     start connecting; never blocks (DNS aside)
--   t:poll_connect()       -> "connected" | "pending" | nil, message
--   t:send(data)           -> bytes written (maybe fewer than #data, maybe 0) | nil, message
--   t:receive()            -> data (maybe ""), then nil or a message when the stream ended
--   t:wait(seconds)        blocks until data may be readable or seconds passed (for scripts)
--   t:close()
--   t.ends_on_kick         true if the stream does not end after a Kick by itself (KCP)
--
-- All of it is called from the one thread that drives the client. Implementations:
-- tcp_transport and kcp_transport (LuaSocket), and tls_transport (TCP over TLS with LuaSec).
-- new(name, options) returns one by name.
local M = {}

function M.new(name, options)
  if name == nil or name == "tcp" then
    return require("moonforge.tcp_transport").new(options)
  elseif name == "kcp" then
    return require("moonforge.kcp_transport").new(options)
  elseif name == "tls" then
    return require("moonforge.tls_transport").new(options)
  end
  error("moonforge: unknown transport " .. tostring(name) .. " (this SDK has \"tcp\", \"kcp\" and \"tls\")", 3)
end

return M
