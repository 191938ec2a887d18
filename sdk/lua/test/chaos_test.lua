-- Chaos: the demo game played through a relay that breaks the connection at random
-- (sdk/internal/relay, driven by chaos_test.go) until the stop file appears; the game logs in again
-- when its session is lost. Checked: every request ends exactly once (reply or error); every push
-- of a session is handled once, in order; no error escapes update() or reaches on_error; close()
-- ends everything and nothing runs after it. Usage: lua chaos_test.lua <host> <port> <stop file>
local dir = string.match(arg[0], "^(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path

local socket = require("socket")
local mf = require("moonforge")
local demo = require("moonforge.generated.demo")

local host, port, stop_file = arg[1], tonumber(arg[2]), arg[3]
assert(host and port and stop_file, "usage: lua chaos_test.lua <host> <port> <stop file>")
math.randomseed(18)

local problems = {}
local function problem(s)
  problems[#problems + 1] = s
end

local client = mf.Client.new({
  host = host,
  port = port,
  schema = demo,
  codec = "lua",
  heartbeat = 0.3,
  request_timeout = 2,
  connect_timeout = 2,
  reconnect_delay = 0.02,
  reconnect_max_delay = 0.2,
  on_error = function(msg) problem("on_error: " .. msg) end,
})

local stats = { requests = 0, ok = 0, failed = 0, logins = 0, pushes = 0, disconnects = 0, resumes = 0, after_close = 0 }
local last_seq = 0
local closed = false
local need_login, joined = true, false
local login, join
local reqs = {}
local ended = 0

client:on("*", function(_, seq)
  if closed then
    stats.after_close = stats.after_close + 1
  end
  stats.pushes = stats.pushes + 1
  if seq == 0 then
    return
  end
  if seq ~= last_seq + 1 then
    problem("push " .. seq .. " after " .. last_seq)
  end
  last_seq = seq
end)

client:on_event(function(ev)
  if closed then
    stats.after_close = stats.after_close + 1
  end
  if ev == "resumed" then
    stats.resumes = stats.resumes + 1
  elseif ev == "disconnected" then
    stats.disconnects = stats.disconnects + 1
  elseif ev == "login_required" then
    last_seq, need_login, joined = 0, true, false
  end
end)

-- track returns a record of one request and the callback that counts how it ends.
local function track(name, after)
  local r = { name = name, ends = 0 }
  reqs[#reqs + 1] = r
  stats.requests = stats.requests + 1
  r.cb = function(err, reply)
    r.ends = r.ends + 1
    if r.ends > 1 then
      return
    end
    ended = ended + 1
    if err then
      stats.failed = stats.failed + 1
      if type(err) ~= "table" or not err.code then
        problem(name .. " failed with " .. tostring(err))
      end
    else
      stats.ok = stats.ok + 1
    end
    if after then
      after(err, reply)
    end
  end
  return r
end

local function request(name, msg, after)
  local r = track(name, after)
  client:request(name, msg, r.cb)
  return r
end

local function step()
  if need_login then
    if not login then
      login = track("login", function(err)
        if not err then
          need_login = false
          stats.logins = stats.logins + 1
        end
        login = nil
      end)
      client:login_guest("chaos-lua-" .. _VERSION:gsub(" ", "") .. "-" .. os.time(), login.cb)
    end
    return
  end
  if not joined then
    if not join then
      join = request("ArenaJoinReq", {}, function(err)
        joined = not err or err.code == mf.ErrorCode.BAD_REQUEST
        join = nil
      end)
    end
    return
  end
  if stats.requests - ended >= 8 then
    return
  end
  local k = math.random(10)
  if k == 1 then
    request("ChatSendReq", { text = "chaos " .. stats.requests })
  elseif k == 2 then
    request("ChatHistoryReq", { limit = 3 })
  elseif k == 3 then
    request("StatsReq", {})
  else
    request("ArenaMoveReq", { dir = { x = math.random(3) - 2, y = math.random(3) - 2 } })
  end
end

local function frame()
  local ok, err = pcall(client.update, client)
  if not ok then
    problem("update raised " .. tostring(err))
  end
  socket.sleep(0.002)
end

local function stopped()
  local f = io.open(stop_file)
  if f then
    f:close()
  end
  return f ~= nil
end

local started = socket.gettime()
local n = 0
while true do
  if n % 20 == 0 and stopped() then
    break
  end
  assert(socket.gettime() - started < 180, "no stop file after 3 minutes")
  if client.state == "closed" or client.state == "idle" then
    client:connect()
  end
  frame()
  if n % 3 == 0 then
    step()
  end
  n = n + 1
end

-- Settle: no new request; the ones out end by reply, error or timeout.
local settle = socket.gettime()
while stats.requests > ended and socket.gettime() - settle < 20 do
  frame()
end
local passed, failed = 0, 0
local function check(ok, what)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print("FAIL " .. what)
  end
end
check(stats.requests == ended, "requests still pending 20 s after the faults stopped: " .. (stats.requests - ended))
for _ = 1, 50 do
  frame()
end
client:close()
closed = true
check(stats.requests == ended, "requests not ended when close() returned: " .. (stats.requests - ended))
check(client:queued() == 0, "items queued after close(): " .. client:queued())
for _ = 1, 5 do
  frame()
end
check(stats.after_close == 0, "handlers or events after close(): " .. stats.after_close)
local twice = 0
for _, r in ipairs(reqs) do
  if r.ends ~= 1 then
    twice = twice + 1
  end
end
check(twice == 0, "requests that did not end exactly once: " .. twice)
for i, p in ipairs(problems) do
  if i <= 20 then
    check(false, p)
  end
end
check(#problems == 0, "problems: " .. #problems)
print(string.format("chaos stats: requests %d (ok %d, failed %d), logins %d, pushes %d, disconnects %d, resumes %d",
  stats.requests, stats.ok, stats.failed, stats.logins, stats.pushes, stats.disconnects, stats.resumes))
check(stats.ok >= 50 and stats.pushes >= 200 and stats.resumes >= 10, "the game made progress between the faults")
print(string.format("chaos: %d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
