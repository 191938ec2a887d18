-- End to end: the demo scenario against a running `moonforge run`, with the pure-Lua codec over
-- LuaSocket. Usage: lua e2e_test.lua <port> [host] [transport: tcp (default) or kcp]
local dir = string.match(arg[0], "^(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path

local T = require("testing")
local mf = require("moonforge")
local demo = require("moonforge.generated.demo")

local port = assert(tonumber(arg[1]), "usage: lua e2e_test.lua <port> [host] [transport]")
local host = arg[2] or "127.0.0.1"
local transport = arg[3] or "tcp"

local errors_seen = {}
local function new_client()
  return mf.Client.new({
    host = host,
    port = port,
    transport = transport,
    schema = demo,
    codec = "lua",
    heartbeat = 1,
    request_timeout = 5,
    reconnect_delay = 0.3,
    on_error = function(msg)
      errors_seen[#errors_seen + 1] = msg
      io.stderr:write("on_error: ", msg, "\n")
    end,
  })
end

local client = new_client()
local device = string.format("lua-e2e-%s-%d-%d", _VERSION:gsub(" ", ""), os.time(), math.random(1, 1000000))
local events = {}
client:on_event(function(ev, info)
  events[#events + 1] = { ev = ev, info = info }
end)
local function count_events(name)
  local n = 0
  for _, e in ipairs(events) do
    if e.ev == name then
      n = n + 1
    end
  end
  return n
end
local function last_event(name)
  for i = #events, 1, -1 do
    if events[i].ev == name then
      return events[i].info
    end
  end
end

-- Every push, in the order handled: seqs must run 1, 2, 3... with no gap and no duplicate.
local pushes = {}
client:on("*", function(msg, seq, name)
  pushes[#pushes + 1] = { seq = seq, name = name, msg = msg }
end)
local states = {}
client:on("ArenaState", function(msg, seq)
  states[#states + 1] = { seq = seq, msg = msg }
end)
local chats = {}
client:on("demo.ChatMessage", function(msg)
  chats[#chats + 1] = msg
end)

local function check_push_seqs()
  for i, p in ipairs(pushes) do
    T.equal(p.seq, i, "push seq at position " .. i .. " (" .. p.name .. ")")
  end
end

-- run drives the client until cond() holds; it fails the test after timeout seconds.
local function run(what, cond, timeout)
  T.check(client:run_until(cond, timeout or 10), "timed out waiting for " .. what)
end

local ack
T.test("connect and log in as a guest (await in a coroutine)", function()
  T.check(client:connect(), "connect")
  run("connected", function() return client:is_ready() end)
  T.equal(count_events("connected"), 1, "connected events")
  local done, err
  client:spawn(function()
    ack, err = client:login_guest(device)
    done = true
  end)
  run("LoginAck", function() return done end)
  T.check(not err, "login:", err)
  T.check(ack.player_id ~= "" and ack.token ~= "", "empty player id or token")
  T.equal(client.session.player_id, ack.player_id, "session player")
end)

T.test("chat history and chat with callbacks and typed helpers", function()
  local hist, sent
  client:chat_history({ limit = 5 }, function(err, reply)
    T.check(not err, "history:", err)
    hist = reply
  end)
  client:request("ChatSendReq", { text = "hello from " .. _VERSION }, function(err, reply)
    T.check(not err, "chat:", err)
    sent = reply
  end)
  run("chat replies", function() return hist and sent and #chats > 0 end)
  T.check(type(hist.messages) == "table", "history has no message list")
  T.check(sent.index ~= nil, "no chat index")
  T.equal(chats[#chats].text, "hello from " .. _VERSION, "pushed chat text")
  T.equal(chats[#chats].from, ack.player_id, "pushed chat sender")
end)

local room
T.test("join the arena, move, receive state pushes", function()
  local done
  client:spawn(function()
    local join, err = client:arena_join({})
    T.check(not err, "join:", err)
    room = join
    for i = 1, 5 do
      local dir = ({ { x = 1 }, { y = 1 }, { x = -1 }, { y = -1 }, { x = 1 } })[i]
      local moved, merr = client:await("ArenaMoveReq", { dir = dir })
      T.check(not merr, "move:", merr)
      T.check(moved.pos and type(moved.pos.x) == "number", "move without position")
    end
    done = true
  end)
  run("join and moves", function() return done end)
  T.check(room and room.room_id ~= "", "no room id")
  run("ArenaState pushes", function() return #states >= 10 end)
  local last = states[#states].msg
  T.equal(last.room_id, room.room_id, "state room")
  local found = false
  for _, p in ipairs(last.players) do
    found = found or p.id == ack.player_id
  end
  T.check(found, "this player is not in the state")
  check_push_seqs()
end)

T.test("heartbeat measures the round trip", function()
  run("a Pong", function() return client.rtt ~= nil end)
  T.check(type(client.rtt) == "number" and client.rtt >= 0, "rtt", client.rtt)
end)

T.test("lose the connection and resume without losing a push", function()
  local before = #pushes
  local seq_before = client.last_push_seq
  -- Close the socket underneath the client, as a network failure would.
  client.transport.sock:close()
  run("disconnected", function() return count_events("disconnected") >= 1 end)
  T.check(last_event("disconnected").reconnecting, "not reconnecting")
  run("resumed", function() return count_events("resumed") >= 1 end)
  local info = last_event("resumed")
  T.equal(info.player_id, ack.player_id, "resumed player")
  T.check(info.replayed > 0, "nothing was replayed")
  run("pushes after the resume", function() return #pushes >= before + 20 end)
  T.check(client.last_push_seq > seq_before, "push seq did not advance")
  check_push_seqs()
  T.equal(count_events("connected"), 2, "connected events")
  T.check(last_event("connected").reconnect, "second connection not marked as a reconnect")
end)

T.test("application errors carry their code", function()
  local e1, e2
  client:chat_send({ text = "" }, function(err) e1 = err end)
  client:chat_send({ text = string.rep("x", 201) }, function(err) e2 = err end)
  run("errors", function() return e1 and e2 end)
  T.equal(e1.code, 1001, "empty message code")
  T.equal(e1.name, "APP_1001", "empty message name")
  T.check(e1.remote and e1.message ~= "", "error not from the server")
  T.equal(e2.code, 1002, "long message code")
  T.check(string.find(tostring(e1), "APP_1001", 1, true), "tostring", tostring(e1))
end)

T.test("client-side errors: unknown message, bad table", function()
  local e1, e2
  client:request("NoSuchReq", {}, function(err) e1 = err end)
  client:request("ChatSendReq", { text = 5 }, function(err) e2 = err end)
  run("errors", function() return e1 and e2 end)
  T.equal(e1.code, mf.ErrorCode.UNKNOWN_MESSAGE, "unknown message")
  T.equal(e2.code, mf.ErrorCode.BAD_REQUEST, "bad table")
  T.check(string.find(e2.message, "demo.ChatSendReq.text: want string, got number", 1, true), e2.message)
end)

T.test("leave the arena and read the statistics", function()
  local left, stats
  client:arena_leave({}, function(err, reply)
    T.check(not err, "leave:", err)
    left = reply
  end)
  run("leave", function() return left end)
  T.equal(left.moves, 5, "moves")
  client:spawn(function()
    stats = assert(client:stats({}))
  end)
  run("stats", function() return stats end)
  T.check(stats.stats and stats.stats.arena_moves >= 5, "stats")
  check_push_seqs()
end)

T.test("a second login of the player kicks this client for good", function()
  local other = new_client()
  T.check(other:connect(), "connect")
  local done
  other:login_guest(device, function(err, a)
    T.check(not err, "second login:", err)
    T.equal(a.player_id, ack.player_id, "same player")
    done = true
  end)
  T.check(other:run_until(function() return done end, 5), "second login timed out")
  run("kicked", function() return count_events("kicked") >= 1 and client.state == "closed" end)
  local k = last_event("kicked")
  T.equal(k.code, mf.ErrorCode.KICKED_DUPLICATE_LOGIN, "kick code")
  T.equal(k.name, "KICKED_DUPLICATE_LOGIN", "kick name")
  T.check(not last_event("disconnected").reconnecting, "reconnecting after a duplicate login")
  other:close()
end)

T.test("resuming an ended session asks for a new login", function()
  T.check(client:connect(), "connect")
  run("login_required", function() return count_events("login_required") >= 1 end)
  T.equal(last_event("login_required").code, mf.ErrorCode.RESUME_FAILED, "code")
  T.check(client.session == nil, "session kept")
  local again
  client:login_guest(device, function(err, a)
    T.check(not err, "login:", err)
    again = a
  end)
  run("login", function() return again end)
  T.equal(again.player_id, ack.player_id, "same player")
end)

T.test("after a restart: the session restored from the kept refresh token (README's recipe)", function()
  local saved = client.session.refresh_token
  T.check(saved and saved ~= "", "no refresh token kept")
  client:close()
  local restarted = new_client()
  restarted:connect()
  local restored, refused
  restarted:spawn(function()
    local fresh = assert(restarted:await("moonforge.RefreshReq", { refresh_token = saved }))
    restored = assert(restarted:login("token", "", fresh.token))
    local _, err = restarted:await("moonforge.RefreshReq", { refresh_token = saved })
    refused = err
  end)
  T.check(restarted:run_until(function() return refused ~= nil end, 10), "restore timed out")
  T.equal(restored.player_id, ack.player_id, "same player")
  T.check(restarted.session.refresh_token ~= saved, "a new refresh token")
  T.equal(refused.code, mf.ErrorCode.UNAUTHENTICATED, "a refresh token used twice")
  restarted:close()
  client:connect()
  run("resumed or login_required", function() return client:is_ready() end)
end)

T.test("close", function()
  client:close()
  client:update()
  T.equal(client.state, "closed", "state")
  local err
  client:request("StatsReq", {}, function(e) err = e end)
  client:update()
  T.equal(err and err.code, mf.ErrorCode.UNAVAILABLE, "request after close")
  T.equal(#errors_seen, 0, "on_error calls")
end)

T.run("e2e_" .. transport)
