-- The TLS transport (see moonforge.transport): TCP over TLS 1.2 or later with LuaSec (Debian's
-- lua-sec), non-blocking like moonforge.tcp_transport, whose connect, send, receive and close it
-- shares. poll_connect reports "connected" once the TCP connection is up and the TLS handshake
-- is done and the certificate is checked: signed by a trusted authority (options.tls.cafile, or
-- the system's certificates in /etc/ssl/certs) and naming the host (options.tls.server_name, by
-- default the host connected to) in its subjectAltName. verify = "none" skips both checks, for
-- tests only.
local tcp = require("moonforge.tcp_transport")

local M = setmetatable({}, { __index = tcp })
M.__index = M

-- new returns an unconnected transport. options.socket is LuaSocket, options.ssl LuaSec
-- (default require("ssl")), options.tls = { cafile, capath, server_name, verify }.
function M.new(options)
  options = options or {}
  local t = tcp.new(options)
  t.ssl = options.ssl or require("ssl")
  t.tls = options.tls or {}
  return setmetatable(t, M)
end

-- names returns the DNS names and IP addresses of a certificate's subjectAltName.
local function names(cert)
  local out = {}
  local ext = cert and cert:extensions() or {}
  local san = ext["2.5.29.17"] or {}
  for _, kind in ipairs({ "dNSName", "iPAddress" }) do
    for _, n in ipairs(san[kind] or {}) do
      out[#out + 1] = string.lower(n)
    end
  end
  return out
end

-- matches reports whether host is one of the names, a "*." name covering one label.
local function matches(host, list)
  host = string.lower(host)
  for _, n in ipairs(list) do
    if n == host then
      return true
    end
    local suffix = string.match(n, "^%*(%..+)$")
    if suffix and string.sub(host, -#suffix) == suffix and not string.find(string.sub(host, 1, -#suffix - 1), ".", 1, true) then
      return true
    end
  end
  return false
end

function M:poll_connect()
  if self.handshaken then
    return "connected"
  end
  if not self.wrapped then
    local status, err = tcp.poll_connect(self)
    if status ~= "connected" then
      return status, err
    end
    local verify = self.tls.verify or "peer"
    local params = {
      mode = "client",
      protocol = "any",
      options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" },
      verify = verify,
    }
    if verify ~= "none" then
      params.cafile = self.tls.cafile
      params.capath = self.tls.capath or (self.tls.cafile == nil and "/etc/ssl/certs" or nil)
    end
    local s, werr = self.ssl.wrap(self.sock, params)
    if not s then
      self:close()
      return nil, "tls: " .. tostring(werr)
    end
    s:settimeout(0)
    if s.sni then
      s:sni(self.tls.server_name or self.host)
    end
    self.sock, self.wrapped = s, true
  end
  local ok, err = self.sock:dohandshake()
  if not ok then
    if tcp.again(err) then
      return "pending"
    end
    self:close()
    return nil, "tls: " .. tostring(err)
  end
  if (self.tls.verify or "peer") ~= "none" then
    local name = self.tls.server_name or self.host
    if not matches(name, names(self.sock:getpeercertificate())) then
      self:close()
      return nil, "tls: the server's certificate does not name " .. name
    end
  end
  self.handshaken = true
  return "connected"
end

function M:close()
  tcp.close(self)
  self.wrapped = false
end

return M
