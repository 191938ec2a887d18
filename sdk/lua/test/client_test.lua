-- Client tests against a scripted server in the same process (LuaSocket on loopback): partial
-- reads and writes, queueing, timeouts, kicks, resume, deduplication of replayed pushes, the
-- heartbeat, protocol violations. Time is a fake clock the tests advance, so no test depends on
-- how fast the machine is. Usage: lua client_test.lua
local dir = string.match(arg[0], "^(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path

local T = require("testing")
local socket = require("socket")
local mf = require("moonforge")
local frame = require("moonforge.frame")
local codec = require("moonforge.lua_codec").new()
local demo = require("moonforge.generated.demo")

local schema = mf.Schema.new(demo)
local function encode(name, t)
  return assert(codec.encode(assert(schema:message(name)), t))
end
local function decode(name, b)
  return assert(codec.decode(assert(schema:message(name)), b))
end

-- Server is one scripted peer: it accepts connections and hands the test each frame it reads.
local Server = {}
Server.__index = Server

function Server.new()
  local srv = assert(socket.bind("127.0.0.1", 0))
  srv:settimeout(0)
  local _, port = srv:getsockname()
  return setmetatable({ srv = srv, port = tonumber(port), frames = {}, conns = 0 }, Server)
end

-- poll accepts a waiting connection and reads what has arrived.
function Server:poll()
  local c = self.srv:accept()
  if c then
    if self.conn then
      self.conn:close()
    end
    c:settimeout(0)
    self.conn, self.reader, self.conns = c, frame.new_reader(), self.conns + 1
  end
  if not self.conn then
    return
  end
  local data, err, partial = self.conn:receive(65536)
  data = data or partial
  if data and data ~= "" then
    self.reader:feed(data)
    while true do
      local f = self.reader:next()
      if not f then break end
      self.frames[#self.frames + 1] = f
    end
  end
  if err == "closed" then
    self.conn = nil
  end
end

-- write sends raw bytes, all of them, blocking briefly if needed.
function Server:write(bytes)
  self.conn:settimeout(1)
  assert(self.conn:send(bytes))
  self.conn:settimeout(0)
end

function Server:reply(req, name, t)
  self:write(frame.encode(assert(schema:message(name)).id, 1, req.seq, encode(name, t)))
end

function Server:push(seq, name, t)
  self:write(frame.encode(assert(schema:message(name)).id, 0, seq, encode(name, t)))
end

-- take removes and returns the first frame read with the given message name.
function Server:take(name)
  local id = assert(schema:message(name)).id
  for i, f in ipairs(self.frames) do
    if f.msg_id == id then
      table.remove(self.frames, i)
      return f
    end
  end
end

function Server:close()
  if self.conn then
    self.conn:close()
    self.conn = nil
  end
end

-- setup returns a client on a fake clock, a server, and helpers to drive both.
local function setup(options)
  local env = { now = 1000, events = {}, pushes = {}, errors = {} }
  env.server = Server.new()
  local o = {
    port = env.server.port,
    schema = demo,
    codec = "lua",
    heartbeat = 0,
    request_timeout = 10,
    reconnect_delay = 1,
    clock = function() return env.now end,
    on_error = function(msg) env.errors[#env.errors + 1] = msg end,
  }
  for k, v in pairs(options or {}) do
    o[k] = v
  end
  env.client = mf.Client.new(o)
  env.client:on_event(function(ev, info) env.events[#env.events + 1] = { ev = ev, info = info } end)
  env.client:on("*", function(msg, seq, name) env.pushes[#env.pushes + 1] = { seq = seq, name = name, msg = msg } end)
  -- pump drives both sides until cond() holds (or 2000 rounds pass, then it fails).
  function env.pump(what, cond)
    for _ = 1, 2000 do
      env.client:update()
      env.server:poll()
      if cond() then
        return
      end
      socket.sleep(0.001)
    end
    error("never happened: " .. what, 2)
  end
  function env.event(name)
    for i = #env.events, 1, -1 do
      if env.events[i].ev == name then
        return env.events[i].info
      end
    end
  end
  -- login connects and logs in, answering as the server.
  function env.login()
    env.client:connect()
    local ack
    env.client:login_guest("device-7f3a9c21e5", function(err, a)
      T.check(not err, "login:", err)
      ack = a
    end)
    local req
    env.pump("LoginReq", function()
      req = env.server:take("LoginReq")
      return req ~= nil
    end)
    env.server:reply(req, "LoginAck", { player_id = "p-1", token = "tok-1", session_id = "s-1" })
    env.pump("LoginAck", function() return ack ~= nil end)
    return ack
  end
  return env
end

T.test("requests made while connecting go out once connected; the reply arrives byte by byte", function()
  local env = setup()
  local c, srv = env.client, env.server
  c:connect()
  local ack
  c:login_guest("device-7f3a9c21e5", function(err, a)
    T.check(not err, "login:", err)
    ack = a
  end)
  env.pump("LoginReq", function() return #srv.frames > 0 end)
  local req = srv.frames[1]
  T.equal(req.msg_id, 10, "msg_id")
  T.equal(req.seq, 1, "first request seq")
  local login = decode("LoginReq", req.payload)
  T.check(login.method == "guest" and login.account == "device-7f3a9c21e5", "LoginReq", login.method, login.account)
  -- The reply, then two pushes, all cut into single bytes across updates.
  local bytes = frame.encode(11, 1, req.seq, encode("LoginAck", { player_id = "p-1", token = "tok-1" })) ..
    frame.encode(2003, 0, 1, encode("ChatMessage", { text = "one" })) ..
    frame.encode(2003, 0, 2, encode("ChatMessage", { text = "two" }))
  for i = 1, #bytes do
    srv:write(string.sub(bytes, i, i))
    env.pump("byte " .. i, function() return true end)
  end
  env.pump("LoginAck and pushes", function() return ack and #env.pushes == 2 end)
  T.equal(ack.player_id, "p-1", "player")
  T.equal(c.session.token, "tok-1", "token kept")
  T.equal(env.pushes[1].msg.text, "one", "first push")
  T.equal(env.pushes[2].seq, 2, "second push seq")
  T.equal(c.last_push_seq, 2, "last push seq")
  T.equal(#env.errors, 0, "errors")
end)

T.test("a large request goes out in pieces (partial writes)", function()
  local env = setup()
  env.login()
  local body = string.rep("0123456789abcdef", 40000) -- 640 KB, more than a socket buffer
  local echoed
  env.client:request("EchoReq", { body = body, n = 7 }, function(err, reply)
    T.check(not err, "echo:", err)
    echoed = reply
  end)
  local f
  env.pump("EchoReq", function()
    f = env.server:take("EchoReq")
    return f ~= nil
  end)
  local req = decode("EchoReq", f.payload)
  T.equal(#req.body, #body, "body size")
  T.check(req.body == body, "body differs")
  env.server:reply(f, "EchoAck", { body = "ok", n = req.n })
  env.pump("EchoAck", function() return echoed end)
  T.equal(echoed.n, 7, "n")
end)

T.test("a request without reply times out, and a late reply is ignored", function()
  local env = setup({ request_timeout = 5 })
  env.login()
  local err
  env.client:request("StatsReq", {}, function(e) err = e end)
  env.pump("StatsReq", function() return #env.server.frames > 0 end)
  env.now = env.now + 4.9
  env.client:update()
  T.check(err == nil, "timed out early")
  env.now = env.now + 0.2
  env.client:update()
  T.equal(err and err.code, mf.ErrorCode.TIMEOUT, "code")
  T.equal(err.name, "TIMEOUT", "name")
  T.check(not err.remote, "a timeout is not from the server")
  env.server:reply(env.server.frames[1], "StatsAck", {})
  env.pump("late reply read", function() return true end)
  for _ = 1, 20 do
    env.client:update()
    socket.sleep(0.001)
  end
  T.equal(#env.errors, 0, "errors")
end)

T.test("Error replies become errors with the code, name, message and retry_after_ms", function()
  local env = setup()
  env.login()
  local got
  env.client:request("ChatSendReq", { text = "" }, function(e, reply)
    T.check(reply == nil, "reply with an error")
    got = e
  end)
  env.pump("request", function() return #env.server.frames > 0 end)
  local f = env.server.frames[1]
  env.server:write(frame.encode(3, 1, f.seq, encode("moonforge.Error", { code = 7, message = "slow down", retry_after_ms = 250 })))
  env.pump("error", function() return got end)
  T.equal(got.code, mf.ErrorCode.RATE_LIMITED, "code")
  T.equal(got.name, "RATE_LIMITED", "name")
  T.equal(got.message, "slow down", "message")
  T.equal(got.retry_after_ms, 250, "retry_after_ms")
  T.check(got.remote, "remote")
end)

T.test("heartbeat Pings acknowledge the last push handled", function()
  local env = setup({ heartbeat = 2 })
  env.login()
  env.server:push(1, "ChatMessage", { text = "a" })
  env.server:push(2, "ChatMessage", { text = "b" })
  env.pump("pushes", function() return #env.pushes == 2 end)
  env.now = env.now + 2
  local ping
  env.pump("Ping", function()
    ping = env.server:take("moonforge.Ping")
    return ping ~= nil
  end)
  local p = decode("moonforge.Ping", ping.payload)
  T.equal(p.ack_push_seq, 2, "ack_push_seq")
  T.check(ping.seq ~= 0, "Ping sent as a request")
  env.server:reply(ping, "moonforge.Pong", { client_time_ms = p.client_time_ms })
  env.pump("Pong", function() return env.client.rtt ~= nil end)
end)

T.test("silence for three heartbeats counts as a lost connection", function()
  local env = setup({ heartbeat = 1 })
  env.login()
  env.now = env.now + 3.5
  env.client:update()
  local info = env.event("disconnected")
  T.check(info and info.reconnecting, "not disconnected")
  T.check(string.find(info.reason, "no data", 1, true), info.reason)
end)

T.test("after a lost connection: reconnect, resume, replayed pushes delivered once", function()
  local env = setup()
  env.login()
  local c, srv = env.client, env.server
  for seq = 1, 3 do
    srv:push(seq, "ChatMessage", { text = "m" .. seq })
  end
  env.pump("pushes", function() return #env.pushes == 3 end)
  -- A request in flight fails; one made while disconnected waits for the resume.
  local inflight, queued
  c:request("StatsReq", {}, function(e) inflight = e end)
  env.pump("StatsReq", function() return #srv.frames > 0 end)
  srv.frames = {}
  srv:close()
  env.pump("disconnected", function() return env.event("disconnected") ~= nil end)
  T.equal(inflight and inflight.code, mf.ErrorCode.UNAVAILABLE, "request in flight")
  c:request("StatsReq", {}, function(e, r) queued = e or r end)
  env.now = env.now + 2 -- past the reconnect delay
  env.pump("ResumeReq", function() return #srv.frames > 0 end)
  local rf = srv.frames[1]
  T.equal(rf.msg_id, 12, "first frame on the new connection is ResumeReq")
  T.equal(#srv.frames, 1, "nothing but ResumeReq before the ResumeAck")
  local resume = decode("ResumeReq", rf.payload)
  T.equal(resume.token, "tok-1", "token")
  T.equal(resume.last_push_seq, 3, "last push seq")
  srv.frames = {}
  -- The server replays 2 and 3 again (as a server that missed an ack might), then 4.
  srv:reply(rf, "ResumeAck", { player_id = "p-1", replayed = 2, token = "tok-2" })
  for seq = 2, 4 do
    srv:push(seq, "ChatMessage", { text = "m" .. seq })
  end
  env.pump("resumed and push 4", function() return env.event("resumed") and #env.pushes == 4 end)
  T.equal(env.event("resumed").replayed, 2, "replayed")
  T.equal(c.session.token, "tok-2", "token renewed")
  for i, p in ipairs(env.pushes) do
    T.equal(p.seq, i, "push order")
  end
  -- The queued request went out after the resume.
  env.pump("queued request", function() return #srv.frames > 0 end)
  local q = srv.frames[1]
  T.equal(q.msg_id, schema:message("StatsReq").id, "queued request")
  srv:reply(q, "StatsAck", {})
  env.pump("queued reply", function() return queued ~= nil end)
  T.check(not queued.code, "queued request failed", tostring(queued))
  T.check(env.event("connected").reconnect, "reconnect flag")
end)

T.test("several addresses: connect skips a dead one; a lost connection resumes on the next, wrapping", function()
  local dead = assert(socket.bind("127.0.0.1", 0))
  local _, dead_port = dead:getsockname()
  dead:close()
  local b = Server.new()
  local env = setup({ addresses = { "127.0.0.1:" .. dead_port, "127.0.0.1" }, port = nil })
  env.client.addresses[2].port = env.server.port
  env.client.addresses[3] = { host = "127.0.0.1", port = b.port }
  local a, c = env.server, env.client
  env.login()
  T.equal(env.event("connected").port, a.port, "first connected port")
  T.equal(#env.errors, 1, "reports of the dead address")
  a:close()
  env.pump("disconnected", function() return env.event("disconnected") ~= nil end)
  env.now = env.now + 2
  local rf
  env.pump("ResumeReq on the next address", function()
    b:poll()
    rf = b:take("ResumeReq")
    return rf ~= nil
  end)
  T.equal(decode("ResumeReq", rf.payload).token, "tok-1", "token resumed with")
  b:reply(rf, "ResumeAck", { player_id = "p-1", replayed = 0 })
  env.pump("resumed", function() return env.event("resumed") ~= nil end)
  T.equal(env.event("connected").port, b.port, "reconnected port")
  -- b goes away too: after the last address comes the first, which is dead, then a again.
  b:close()
  b.srv:close()
  local again
  for _ = 1, 3000 do
    env.now = env.now + 1
    c:update()
    a:poll()
    again = a:take("ResumeReq")
    if again then
      break
    end
    socket.sleep(0.001)
  end
  T.check(again ~= nil, "no ResumeReq back on the first live address")
  T.equal(env.event("connected").port, a.port, "connected port after wrapping")
end)

T.test("a failed resume asks for a login and fails the queued requests", function()
  local env = setup()
  env.login()
  local c, srv = env.client, env.server
  srv:close()
  env.pump("disconnected", function() return env.event("disconnected") ~= nil end)
  local queued
  c:request("StatsReq", {}, function(e) queued = e end)
  env.now = env.now + 2
  env.pump("ResumeReq", function() return #srv.frames > 0 end)
  local rf = srv.frames[1]
  srv:write(frame.encode(3, 1, rf.seq, encode("moonforge.Error", { code = 11, message = "session expired" })))
  env.pump("login_required", function() return env.event("login_required") ~= nil end)
  T.equal(env.event("login_required").code, mf.ErrorCode.RESUME_FAILED, "code")
  T.check(c.session == nil, "session kept")
  env.pump("queued request failed", function() return queued ~= nil end)
  T.equal(queued.code, mf.ErrorCode.RESUME_FAILED, "queued request")
  T.check(c:is_ready(), "not ready to log in again")
end)

T.test("a kick for idleness reconnects; a kick for a duplicate login does not", function()
  local env = setup()
  env.login()
  local c, srv = env.client, env.server
  srv:write(frame.encode(4, 0, 0, encode("moonforge.Kick", { code = 13, reason = "idle" })))
  srv:close()
  env.pump("kicked", function() return env.event("disconnected") ~= nil end)
  T.equal(env.event("kicked").code, mf.ErrorCode.IDLE_TIMEOUT, "kick code")
  T.equal(env.event("kicked").reason, "idle", "kick reason")
  T.check(env.event("disconnected").reconnecting, "not reconnecting after an idle kick")
  T.equal(c.last_push_seq, 0, "a Kick is not a push")
  env.now = env.now + 2
  env.pump("ResumeReq", function() return #srv.frames > 0 end)
  srv:reply(srv.frames[1], "ResumeAck", { player_id = "p-1" })
  srv.frames = {}
  env.pump("resumed", function() return env.event("resumed") ~= nil end)
  env.events = {}
  srv:write(frame.encode(4, 0, 0, encode("moonforge.Kick", { code = 12, reason = "elsewhere" })))
  srv:close()
  env.pump("kicked", function() return env.event("disconnected") ~= nil end)
  T.check(not env.event("disconnected").reconnecting, "reconnecting after a duplicate login")
  T.equal(c.state, "closed", "state")
end)

T.test("a frame the server should never send ends the connection", function()
  local env = setup()
  env.login()
  env.server:write("\0\0\0\3garbage")
  env.pump("disconnected", function() return env.event("disconnected") ~= nil end)
  T.check(string.find(env.event("disconnected").reason, "protocol violation", 1, true), env.event("disconnected").reason)
  T.check(#env.errors >= 1 and string.find(env.errors[1], "MALFORMED_FRAME", 1, true), "on_error", env.errors[1])
end)

T.test("await needs a coroutine; callback errors go to on_error", function()
  local env = setup()
  local ok, err = pcall(env.client.await, env.client, "StatsReq", {})
  T.check(not ok and string.find(err, "await needs a coroutine", 1, true), "await outside a coroutine:", err)
  env.login()
  env.client:on("ChatMessage", function() error("handler bug") end)
  env.server:push(1, "ChatMessage", { text = "x" })
  env.pump("push", function() return #env.pushes == 1 end)
  T.check(#env.errors == 1 and string.find(env.errors[1], "handler bug", 1, true), "on_error", env.errors[1])
  T.equal(env.client.last_push_seq, 1, "push handled despite the error")
end)

T.test("await_push returns the next push, or a TIMEOUT error", function()
  local env = setup({ request_timeout = 3 })
  env.login()
  local got, seq, timed_out
  env.client:spawn(function()
    got, seq = env.client:await_push("ChatMessage")
    local none, err = env.client:await_push("demo.ArenaState", 2)
    T.check(none == nil, "a push that never came")
    timed_out = err
  end)
  env.server:push(1, "ArenaEvent", { player_id = "x" })
  env.server:push(2, "ChatMessage", { text = "hi" })
  env.pump("ChatMessage", function() return got ~= nil end)
  T.equal(got.text, "hi", "text")
  T.equal(seq, 2, "seq")
  env.now = env.now + 1.9
  env.client:update()
  T.check(timed_out == nil, "timed out early")
  env.now = env.now + 0.2
  env.client:update()
  T.equal(timed_out and timed_out.code, mf.ErrorCode.TIMEOUT, "timeout")
  local ok, err = pcall(env.client.await_push, env.client, "ChatMessage")
  T.check(not ok and string.find(err, "needs a coroutine", 1, true), "outside a coroutine:", err)
end)

T.test("typed helpers come from the schema, never over a method", function()
  local env = setup()
  T.equal(type(env.client.chat_send), "function", "chat_send")
  T.equal(type(env.client.arena_move), "function", "arena_move")
  T.equal(env.client.connect, mf.Client.connect, "connect")
  T.equal(env.client.codec.name, "lua", "codec")
end)

T.test("the pb codec is chosen when lua-protobuf is there", function()
  local loaded = {}
  package.loaded.pb = {
    load = function(d) loaded[#loaded + 1] = d return true, #d end,
    encode = function(name, t) return codec.encode(schema:message(name), t) end,
    decode = function(name, b) return codec.decode(schema:message(name), b) end,
  }
  local c = mf.Client.new({ schema = demo, socket = socket })
  package.loaded.pb = nil
  T.equal(c.codec.name, "pb", "codec")
  T.equal(#loaded, 2, "descriptor sets loaded (protocol and demo)")
  local md = c.schema:message("ArenaJoinAck")
  local t = assert(c.codec.decode(md, encode("ArenaJoinAck", { room_id = "r" })))
  T.check(t.room_id == "r" and type(t.players) == "table", "defaults not filled")
  T.equal(mf.Client.new({ schema = demo, socket = socket }).codec.name, "lua", "codec without pb")
end)

T.test("several modules from require in one table constructor (Lua 5.4's second value)", function()
  -- Only a first load returns the second value: load both afresh.
  package.loaded["moonforge.generated.protocol"], package.loaded["moonforge.generated.demo"] = nil, nil
  local c = mf.Client.new({
    schema = { require("moonforge.generated.protocol"), require("moonforge.generated.demo") },
    socket = socket,
    codec = "lua",
  })
  T.check(c.schema:message("ChatSendReq") ~= nil, "demo's messages are in the schema")
  T.check(c.schema:message("LoginReq") ~= nil, "the framework's messages are in the schema")
  local ok, err = pcall(mf.Schema.new, { "moonforge.generated.demo" })
  T.check(not ok and string.find(err, "not a generated schema module", 1, true), "a lone string:", err)
  ok, err = pcall(mf.Schema.new, { demo, "x", demo })
  T.check(not ok and string.find(err, "not a generated schema module", 1, true), "a string between modules:", err)
end)

T.test("sleep waits in a coroutine while update() runs the rest", function()
  local env = setup()
  env.login()
  local steps = {}
  env.client:spawn(function()
    steps[#steps + 1] = "start"
    T.equal(env.client:sleep(5), true, "sleep's result")
    steps[#steps + 1] = "woke"
  end)
  env.client:spawn(function()
    env.client:sleep(1)
    steps[#steps + 1] = "short"
  end)
  env.client:update()
  T.equal(table.concat(steps, ","), "start", "before the time")
  env.now = env.now + 1
  env.client:update()
  T.equal(table.concat(steps, ","), "start,short", "after 1 s")
  env.now = env.now + 4
  env.client:update()
  T.equal(table.concat(steps, ","), "start,short,woke", "after 5 s")
  local ok, err = pcall(env.client.sleep, env.client, 1)
  T.check(not ok and string.find(err, "needs a coroutine", 1, true), "outside a coroutine:", err)
  env.client:spawn(function()
    local ok2, err2 = pcall(env.client.sleep, env.client, -1)
    T.check(not ok2 and string.find(err2, "seconds", 1, true), "negative:", err2)
  end)
end)

T.test("an on_error that raises never escapes update(), and reconnecting goes on", function()
  local raised = 0
  local env = setup({ on_error = function() raised = raised + 1 error("on_error touched a destroyed object") end })
  env.login()
  env.client:on("ChatMessage", function() error("handler bug") end)
  env.client:on_event(function() error("event handler bug") end)
  env.server:push(1, "ChatMessage", { text = "x" })
  env.pump("push", function() return env.client.last_push_seq == 1 end)
  T.check(raised >= 1, "on_error not called")
  env.server:close()
  env.pump("disconnected", function() return env.event("disconnected") ~= nil end)
  env.now = env.now + 2
  env.pump("reconnected", function() return env.server.conns == 2 and #env.server.frames > 0 end)
  T.equal(env.server.frames[1].msg_id, 12, "ResumeReq on the new connection")
end)

T.test("close() ends every request before it returns, and leaves nothing for update()", function()
  local env = setup({ max_work_per_update = 1 })
  env.login()
  local c, srv = env.client, env.server
  local results = {}
  for i = 1, 3 do
    c:request("StatsReq", {}, function(err, reply) results[i] = err and err.name or "ok" end)
  end
  env.pump("requests", function() return #srv.frames == 3 end)
  -- Two replies arrive; with one item per update, the second waits in the queue.
  local ack = schema:message("StatsAck").id
  srv:write(frame.encode(ack, 1, srv.frames[1].seq, encode("StatsAck", {})) ..
    frame.encode(ack, 1, srv.frames[2].seq, encode("StatsAck", {})) ..
    frame.encode(2003, 0, 1, encode("ChatMessage", { text = "late" })))
  env.pump("first reply", function() return results[1] ~= nil end)
  T.equal(c:queued(), 2, "the second reply and the push queued")
  T.check(results[2] == nil, "the second reply ran in the same update")
  local disconnected = false
  c:on_event(function(ev) if ev == "disconnected" then disconnected = true end end)
  c:close()
  T.equal(results[2], "ok", "a reply that arrived")
  T.equal(results[3], "UNAVAILABLE", "a request in flight")
  T.check(disconnected, "disconnected event ran in close()")
  T.equal(c:queued(), 0, "items left for update()")
  T.equal(#env.pushes, 0, "a push not handled before close() is dropped")
  local after
  c:request("StatsReq", {}, function(err) after = err end)
  c:update()
  T.equal(after and after.name, "UNAVAILABLE", "a request after close()")
end)

T.test("a new login: the new session's pushes, read with its LoginAck, are not taken for replays", function()
  local env = setup()
  env.login()
  local c, srv = env.client, env.server
  for seq = 1, 3 do
    srv:push(seq, "ChatMessage", { text = "old" .. seq })
  end
  env.pump("old pushes", function() return #env.pushes == 3 end)
  local ack
  c:login_guest("dev-2", function(err, a) ack = a end)
  local req
  env.pump("second LoginReq", function()
    req = srv:take("LoginReq")
    return req ~= nil
  end)
  srv:write(frame.encode(11, 1, req.seq, encode("LoginAck", { player_id = "p-2", token = "tok-2" })) ..
    frame.encode(2003, 0, 1, encode("ChatMessage", { text = "new1" })) ..
    frame.encode(2003, 0, 2, encode("ChatMessage", { text = "new2" })))
  env.pump("new session's pushes", function() return ack and #env.pushes == 5 end)
  T.equal(env.pushes[4].msg.text, "new1", "first push of the new session")
  T.equal(c.last_push_seq, 2, "last push seq of the new session")
end)

T.test("close() from a callback inside update(): what the callback queues after it still runs", function()
  local env = setup()
  env.login()
  local c, srv = env.client, env.server
  local after
  c:request("StatsReq", {}, function()
    c:close()
    c:request("StatsReq", {}, function(err) after = err end)
  end)
  env.pump("request", function() return #srv.frames > 0 end)
  srv:reply(srv.frames[1], "StatsAck", {})
  env.pump("the request made after close()", function() return after ~= nil end)
  T.equal(after.name, "UNAVAILABLE", "its error")
  T.equal(#env.errors, 0, "errors")
end)

T.test("update() runs at most max_work_per_update items; the queue stays bounded", function()
  local env = setup({ max_work_per_update = 10, max_queued = 50, heartbeat = 1 })
  env.login()
  local c, srv = env.client, env.server
  local bytes = {}
  for seq = 1, 300 do
    bytes[#bytes + 1] = frame.encode(2003, 0, seq, encode("ChatMessage", { index = seq }))
  end
  srv:write(table.concat(bytes))
  local most = 0
  env.pump("300 pushes", function()
    T.check(c:queued() <= 50, "queued", c:queued())
    most = math.max(most, #env.pushes - (env.before or 0))
    env.before = #env.pushes
    env.now = env.now + 1 -- a slow frame: silence while not reading is no loss
    return #env.pushes == 300
  end)
  T.check(most <= 10, "more than 10 handlers in one update:", most)
  for i, p in ipairs(env.pushes) do
    T.equal(p.seq, i, "push order")
  end
  T.check(env.event("disconnected") == nil, "disconnected while the game was slow")
end)

T.run("client")
