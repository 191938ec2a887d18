-- End to end over TLS: TCP over TLS with LuaSec against `moonforge run -dev` (its self-signed
-- certificate), the token refresh, logout, and the certificate checks.
-- Usage: lua tls_e2e_test.lua <tls port> <ca file>
local dir = string.match(arg[0], "^(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path

local T = require("testing")
local mf = require("moonforge")
local demo = require("moonforge.generated.demo")

local port = assert(tonumber(arg[1]), "usage: lua tls_e2e_test.lua <tls port> <ca file>")
local cafile = assert(arg[2], "usage: lua tls_e2e_test.lua <tls port> <ca file>")

local function new_client(tls)
  return mf.Client.new({
    host = "127.0.0.1",
    port = port,
    transport = "tls",
    tls = tls,
    schema = demo,
    codec = "lua",
    heartbeat = 1,
    request_timeout = 5,
    reconnect = false,
  })
end

local function run(c, what, cond)
  T.check(c:run_until(cond, 10), "timed out waiting for " .. what)
end

local device = string.format("lua-tls-%s-%d-%d", _VERSION:gsub(" ", ""), os.time(), math.random(1, 1000000))
local client = new_client({ cafile = cafile, server_name = "localhost" })
local ack

T.test("connect over TLS, log in, request", function()
  T.check(client:connect(), "connect")
  run(client, "connected", function() return client:is_ready() or client.state == "closed" end)
  T.equal(client.state, "connected", "state")
  local done, err, stats
  client:spawn(function()
    ack, err = client:login_guest(device)
    if not err then
      stats, err = client:await("StatsReq", {})
    end
    done = true
  end)
  run(client, "login and stats", function() return done end)
  T.check(not err, "login or stats:", err)
  T.check(ack.refresh_token ~= "" and ack.refresh_expires_at_ms > ack.expires_at_ms, "LoginAck without a refresh token")
  T.check(stats ~= nil, "no StatsAck")
end)

T.test("refresh: new tokens, the old refresh token is spent", function()
  local first = client.session.refresh_token
  local done, err, ref
  client:spawn(function()
    ref, err = client:refresh()
    done = true
  end)
  run(client, "RefreshAck", function() return done end)
  T.check(not err, "refresh:", err)
  T.check(ref.token ~= "" and ref.refresh_token ~= first, "RefreshAck tokens")
  T.equal(client.session.token, ref.token, "session token")
  T.equal(client.session.refresh_token, ref.refresh_token, "session refresh token")
end)

T.test("logout closes without reconnecting", function()
  local done, err
  local events = {}
  client:on_event(function(ev) events[#events + 1] = ev end)
  client:spawn(function()
    err = client:logout(false)
    done = true
  end)
  run(client, "LogoutAck", function() return done end)
  T.check(not err, "logout:", err)
  run(client, "closed", function() return client.state == "closed" end)
  T.equal(client.session, nil, "session after logout")
end)

T.test("a certificate for another name is refused", function()
  local c = new_client({ cafile = cafile, server_name = "other.example" })
  local reason
  c:on_event(function(ev, info)
    if ev == "disconnected" then reason = info.reason end
  end)
  c:connect()
  run(c, "refusal", function() return c.state == "closed" end)
  T.check(reason and string.find(reason, "does not name other.example", 1, true), "reason:", reason)
end)

T.test("an untrusted certificate is refused", function()
  local c = new_client({ capath = "/nonexistent", server_name = "localhost" })
  c:connect()
  run(c, "refusal", function() return c.state == "closed" end)
  T.check(not c:is_ready(), "connected to an untrusted server")
end)

T.run("tls")
