-- Several addresses against real servers: the first address is dead, so connect() moves on to the
-- second; that server is killed mid-session, and the client reconnects to the third, where the
-- resume fails (the server does not know the session), "login_required" runs, and the game logs
-- in again and plays on.
-- With "cluster" the two ports are proxies of one cluster: the refresh token restores the same
-- player on the second.
-- Usage: lua failover_test.lua <dead port> <port> <port> <pid of the server on the first port> [cluster]
local dir = string.match(arg[0], "^(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path

local T = require("testing")
local mf = require("moonforge")
local demo = require("moonforge.generated.demo")

local usage = "usage: lua failover_test.lua <dead port> <port> <port> <pid>"
local dead, first, second = assert(tonumber(arg[1]), usage), assert(tonumber(arg[2]), usage), assert(tonumber(arg[3]), usage)
local pid = assert(tonumber(arg[4]), usage)
local cluster = arg[5] == "cluster"

local reports = {}
local client = mf.Client.new({
  addresses = { "127.0.0.1:" .. dead, "127.0.0.1:" .. first, { host = "127.0.0.1", port = second } },
  schema = demo,
  codec = "lua",
  heartbeat = 1,
  request_timeout = 5,
  reconnect_delay = 0.2,
  on_error = function(msg)
    reports[#reports + 1] = msg
  end,
})
local device = string.format("lua-failover-%s-%d-%d", _VERSION:gsub(" ", ""), os.time(), math.random(1, 1000000))
local events = {}
local relogin, relogin_refused
client:on_event(function(ev, info)
  events[#events + 1] = { ev = ev, info = info }
  if ev == "login_required" then
    -- As a game does: restore the player with the refresh token (which works across the proxies of
    -- one cluster, whose login store is shared), else log in anew.
    client:spawn(function()
      local fresh, err = client:await("moonforge.RefreshReq", { refresh_token = info.refresh_token })
      local ack
      if fresh then
        ack, err = client:login("token", "", fresh.token)
      else
        relogin_refused = err
        ack, err = client:login_guest(device)
      end
      relogin = { err = err, ack = ack }
    end)
  end
end)
local function count(name)
  local n = 0
  for _, e in ipairs(events) do
    if e.ev == name then
      n = n + 1
    end
  end
  return n
end
local function run(what, cond, timeout)
  T.check(client:run_until(cond, timeout or 10), "timed out waiting for " .. what)
end
local function chat(text)
  local reply, failed
  client:request("ChatSendReq", { text = text }, function(err, r)
    reply, failed = r, err
  end)
  run("chat reply", function() return reply or failed end)
  T.check(not failed, "chat:", failed)
  T.check(reply.index ~= nil, "no chat index")
end

local first_player
T.test("connect skips the dead address", function()
  T.check(client:connect(), "connect")
  run("connected", function() return client:is_ready() end)
  T.equal(events[1].ev, "connected", "first event")
  T.equal(events[1].info.port, first, "connected to port")
  T.check(#reports == 1 and reports[1]:find(":" .. dead, 1, true), "the dead address is reported once:", reports[1])
  local done
  client:login_guest(device, function(err, ack)
    T.check(not err, "login:", err)
    first_player, done = ack.player_id, true
  end)
  run("login", function() return done end)
  chat("before the failover")
end)

T.test("the server is killed: the client carries on through the next address", function()
  T.check(os.execute("kill -9 " .. pid), "kill -9 " .. pid)
  run("login again", function() return relogin ~= nil end, 20)
  T.check(not relogin.err, "login again:", relogin.err)
  local info = events[#events].info
  T.check(type(info.refresh_token) == "string" and info.refresh_token ~= "", "login_required without the refresh token")
  if cluster then
    T.check(not relogin_refused, "restore on the second proxy:", relogin_refused)
    T.equal(relogin.ack.player_id, first_player, "player restored on the second proxy")
  else
    T.equal(relogin_refused and relogin_refused.code, mf.ErrorCode.UNAUTHENTICATED, "refresh token of the first server on the second")
    T.check(relogin.ack.player_id ~= first_player, "a new player on the second server (it has its own store)")
  end
  T.check(count("disconnected") >= 1, "no disconnected event")
  T.equal(count("connected"), 2, "connected events")
  T.equal(events[#events].ev, "login_required", "last event")
  local last_connected
  for _, e in ipairs(events) do
    if e.ev == "connected" then
      last_connected = e.info
    end
  end
  T.equal(last_connected.port, second, "reconnected to port")
  T.check(last_connected.reconnect, "connected.reconnect")
  T.equal(count("resumed"), 0, "resumed events")
  chat("after the failover")
end)

T.test("bad addresses are refused", function()
  for _, bad in ipairs({ {}, { "127.0.0.1:0" }, { "127.0.0.1:x" }, { ":7001" }, { 7001 }, "127.0.0.1:7001" }) do
    T.check(not pcall(mf.Client.new, { addresses = bad }), "accepted addresses", bad[1] or bad)
  end
  local c = mf.Client.new({ addresses = { "example.org", "[::1]:7010" }, port = 7005 })
  T.equal(c.addresses[1].port, 7005, "default port")
  T.equal(c.addresses[2].host, "::1", "IPv6 host")
  T.equal(c.addresses[2].port, 7010, "IPv6 port")
end)

T.run("failover")
