-- Client: one connection to a Moonforge gateway, driven from the game's tick.
--
-- The client never blocks (except for name resolution in connect when given a host name) and has
-- no thread of its own: client:update() does all the work, and every callback, push handler and
-- event handler runs inside update(), in the order things happened. A client belongs to the one
-- Lua thread that calls update(); it is not safe to drive it from two.
--
--   local client = mf.Client.new{ host = "127.0.0.1", port = 7001, schema = require("moonforge.generated.demo") }
--   client:on_event(function(ev, info) print(ev) end)
--   client:on("ChatMessage", function(msg, seq) print(msg.from, msg.text) end)
--   client:connect()
--   client:login_guest("device-7f3a9c21e5", function(err, ack) ... end)
--   -- each tick: client:update()
local Schema = require("moonforge.schema")
local codec_mod = require("moonforge.codec")
local frame = require("moonforge.frame")
local errors = require("moonforge.errors")
local transport_mod = require("moonforge.transport")

local floor = math.floor
local Code = errors.ErrorCode

local MSG_PING, MSG_ERROR, MSG_KICK = 1, 3, 4
local MAX_SEQ = 4294967295

local Client = {}
Client.__index = Client

-- DEFAULTS are the options Client.new fills in.
Client.DEFAULTS = {
  host = "127.0.0.1",
  port = 7001,
  transport = "tcp",
  heartbeat = 10, -- seconds between Pings; 0 turns the heartbeat off
  request_timeout = 10, -- seconds before a request fails with TIMEOUT
  connect_timeout = 5, -- seconds a connection attempt may take
  reconnect = true, -- reconnect and resume after a lost connection
  reconnect_delay = 0.5, -- first delay before reconnecting, doubled after each failure
  reconnect_max_delay = 10,
  max_frame = frame.DEFAULT_MAX_LENGTH, -- largest length field accepted or sent
  codec = "auto", -- "auto" (lua-protobuf when installed), "lua" or "pb"
  max_work_per_update = 32, -- callbacks, handlers and events one update() runs; the rest wait
  max_queued = 512, -- items waiting for update(): at this many the client stops reading frames
}

-- Kicks after which the client reconnects by itself: the connection was fine, only idle, or the
-- server was stopping. After any other kick the client stays closed.
local RECONNECT_AFTER_KICK = { [Code.IDLE_TIMEOUT] = true, [Code.SERVER_SHUTDOWN] = true }

local function default_clock(socket)
  if socket and socket.gettime then
    return socket.gettime
  end
  return os.clock
end

local function report(msg)
  io.stderr:write("moonforge: ", tostring(msg), "\n")
end

-- parse_addresses returns the { host, port } to try, in order: options.addresses, else host:port.
-- An address is "host:port", "[v6]:port", "host" (the port option's port) or { host =, port = }.
local function parse_addresses(o)
  if o.addresses == nil then
    return { { host = o.host, port = o.port } }
  end
  if type(o.addresses) ~= "table" or #o.addresses == 0 then
    error("moonforge.Client.new: addresses must be a non-empty list of \"host:port\"", 3)
  end
  local list = {}
  for i, a in ipairs(o.addresses) do
    local host, port
    if type(a) == "table" then
      host, port = a.host, a.port or o.port
    elseif type(a) == "string" then
      host, port = a:match("^%[([^%]]+)%]:?(%d*)$")
      if not host then
        host, port = a:match("^([^:]+):?(%d*)$")
      end
      port = tonumber(port) or (port == "" and o.port) or nil
    end
    port = tonumber(port)
    if type(host) ~= "string" or host == "" or not port or port < 1 or port > 65535 or port % 1 ~= 0 then
      error("moonforge.Client.new: addresses[" .. i .. "] is not host:port: " .. tostring(a), 3)
    end
    list[i] = { host = host, port = port }
  end
  return list
end

-- new returns an unconnected client. Options (all optional, see Client.DEFAULTS):
--   host, port (7001, 7003 for KCP, 7443 for TLS);
--   addresses: the servers (proxies) to use instead of host:port, in order: { "10.0.0.1:7001",
--     "10.0.0.2:7001" } ("host" alone takes port). connect() moves down the list until one
--     answers; every reconnect after a failure or a lost connection goes to the next address,
--     wrapping around, with the usual back-off. Shuffle the list to spread players over servers;
--   transport ("tcp", "kcp": KCP over UDP, or "tls":
--   TCP over TLS with LuaSec), heartbeat, request_timeout, connect_timeout, reconnect,
--   reconnect_delay, reconnect_max_delay, max_frame, codec;
--   schema: a generated schema module (require("moonforge.generated.demo")), a sequence of them,
--     or a moonforge.Schema; the framework's messages are always included;
--   clock: a function returning seconds (default LuaSocket's socket.gettime);
--   socket: the LuaSocket module (default require("socket"));
--   tls: for transport "tls", { cafile, capath, server_name, verify } (see moonforge.tls_transport);
--   ssl: the LuaSec module (default require("ssl"));
--   on_error: function(message) called when a callback raises, a push cannot be decoded or
--     connect() moves past an address that failed (default: write to stderr); an error it raises is dropped.
-- It raises an error for a bad option.
function Client.new(options)
  options = options or {}
  local o = {}
  for k, v in pairs(Client.DEFAULTS) do
    o[k] = v
  end
  for k, v in pairs(options) do
    o[k] = v
  end
  if options.port == nil and o.transport == "kcp" then
    o.port = 7003
  end
  local schema = o.schema
  if getmetatable(schema) ~= Schema then
    local mods = { require("moonforge.generated.protocol") }
    if type(schema) == "table" and schema.messages then
      mods[2] = schema
    elseif type(schema) == "table" then
      for _, m in ipairs(schema) do
        mods[#mods + 1] = m
      end
    elseif schema ~= nil then
      error("moonforge.Client.new: schema must be a generated schema module, got " .. type(schema), 2)
    end
    schema = Schema.new(mods)
  end
  for _, name in ipairs({ "moonforge.Ping", "moonforge.Error", "moonforge.Kick", "moonforge.LoginReq", "moonforge.ResumeReq" }) do
    if not schema.messages[name] then
      error("moonforge.Client.new: the schema lacks the framework message " .. name, 2)
    end
  end
  local addresses = parse_addresses(o)
  local self = setmetatable({
    options = o,
    addresses = addresses, -- { host, port } to try, in order
    address = 1, -- index in addresses of the server connected to or tried last
    schema = schema,
    codec = codec_mod.new(schema, o.codec),
    transport = transport_mod.new(o.transport, { socket = o.socket, ssl = o.ssl, tls = o.tls }),
    clock = o.clock,
    on_error = o.on_error or report,
    -- "idle" (never connected), "connecting", "connected", "waiting" (to reconnect), "closed"
    state = "idle",
    session = nil, -- { player_id, token, expires_at_ms, refresh_token, session_id } once logged in
    last_push_seq = 0, -- highest push seq handled (delivered to the handlers)
    rtt = nil, -- seconds, from the last Pong
    _received_seq = 0, -- highest push seq received (delivered or queued for delivery)
    _pending = {}, -- requests awaiting their reply, by seq
    _outbox = {}, -- requests and one-way messages waiting for the connection to be ready
    _wbuf = {}, -- frames to write
    _queue = {}, -- callbacks and handlers to run in update, in order: { fn, push = bool }
    _qhead = 1, -- index of the first item of _queue not run yet
    _qtail = 0, -- index of the last item
    _handlers = {}, -- push handlers by message full name, and "*"
    _event_handlers = {},
    _timers = {}, -- { at, fn, cancelled } of await_push
    _seq = 0,
    _attempts = 0,
  }, Client)
  if not self.clock then
    local ok, socket = pcall(require, "socket")
    self.clock = o.socket and default_clock(o.socket) or default_clock(ok and socket or nil)
  end
  -- The typed helpers of the schema (client:chat_send(msg, cb)), unless a method has the name.
  for name, fn in pairs(schema.helpers) do
    if Client[name] == nil and rawget(self, name) == nil then
      self[name] = fn
    end
  end
  return self
end

-- is_ready reports whether requests go out now: connected, and resumed if there was a session.
function Client:is_ready()
  return self.state == "connected" and not self._resuming
end

-- connect starts connecting to host:port; it returns at once (resolving a host name may block).
-- Progress is made in update(); the "connected" event tells when it is done, "disconnected"
-- when it failed. Connecting again after close() resumes the session when the server still
-- holds it. It returns true, or nil and an error when the attempt could not even start.
function Client:connect()
  if self.state == "connecting" or self.state == "connected" then
    return true
  end
  self._closing = false
  self._kicked = nil
  self._attempts = 0
  self._untried = #self.addresses - 1 -- addresses connect() still moves to at once on a failure
  return self:_dial()
end

-- _where names the current address, host:port.
function Client:_where()
  local a = self.addresses[self.address]
  return a.host .. ":" .. tostring(a.port)
end

function Client:_dial()
  local a = self.addresses[self.address]
  local ok, err = self.transport:connect(a.host, a.port)
  if not ok then
    self:_lost("connect to " .. self:_where() .. ": " .. tostring(err))
    if self.state == "connecting" then
      return true -- on the next address
    end
    return nil, errors.new(Code.UNAVAILABLE, tostring(err))
  end
  self.state = "connecting"
  self._connect_deadline = self.clock() + self.options.connect_timeout
  return true
end

-- close closes the connection and stops reconnecting. Before it returns, every request ends: the
-- callbacks of those whose reply arrived run with it, the others with UNAVAILABLE, and the
-- "disconnected" event runs; pushes not handled yet are dropped. Nothing is left for update().
-- The session is kept: connect() resumes it.
function Client:close()
  if self.state == "closed" then
    return
  end
  self._closing = true
  self:_lost("closed by the client")
  self:_drain(math.huge, true)
end

-- on registers fn(msg, seq) for the pushes of one message, by short or full name; "*" receives
-- every push as fn(msg, seq, name). Handlers run in update(), in registration order. It returns
-- a function that removes the handler. It raises an error for an unknown message name.
function Client:on(name, fn)
  local key = name
  if name ~= "*" then
    local md = self.schema:message(name)
    if not md then
      error("moonforge: unknown message " .. tostring(name), 2)
    end
    key = md.full_name
  end
  local list = self._handlers[key] or {}
  self._handlers[key] = list
  list[#list + 1] = fn
  return function() self:off(name, fn) end
end

-- off removes a push handler registered with on.
function Client:off(name, fn)
  local md = name ~= "*" and self.schema:message(name)
  local list = self._handlers[md and md.full_name or name]
  for i = #(list or {}), 1, -1 do
    if list[i] == fn then
      table.remove(list, i)
    end
  end
end

-- on_event registers fn(event, info) for the client's events:
--   "connected"       { host, port, reconnect = true after a lost connection }
--   "disconnected"    { reason, reconnecting = bool, retry_in = seconds when reconnecting }
--   "resumed"         { player_id, replayed }: the session continues, no push lost
--   "kicked"          { code, name, reason }: the server is closing the connection
--   "login_required"  { code, name, message, refresh_token }: the session could not be resumed;
--                     log in again (refresh_token, the lost session's, can restore the player)
-- It returns a function that removes the handler.
function Client:on_event(fn)
  local list = self._event_handlers
  list[#list + 1] = fn
  return function()
    for i = #list, 1, -1 do
      if list[i] == fn then
        table.remove(list, i)
      end
    end
  end
end

-- request sends the message name (short or full) built from the table msg and calls
-- cb(err, reply) from update() when the reply, an Error, a timeout or the loss of the connection
-- ends it. While the client is connecting, reconnecting or resuming, the request waits and goes
-- out once the connection is ready. It returns the request's seq, or nil and the error (which cb
-- also receives) when the request cannot be sent at all.
function Client:request(name, msg, cb)
  if cb ~= nil and type(cb) ~= "function" then
    error("moonforge: request callback must be a function", 2)
  end
  return self:_request(name, msg, cb or function() end)
end

-- await sends a request and waits for its reply inside a coroutine: it yields, update() resumes
-- it, and it returns reply, err (err is nil on success). It raises an error outside a coroutine.
-- The coroutine must not be the one that calls update().
function Client:await(name, msg)
  return self:_await(function(cb) return self:_request(name, msg, cb) end)
end

-- await_push waits inside a coroutine for the next push of one message (by short or full name)
-- and returns msg, seq; after timeout seconds (default request_timeout) it returns nil and a
-- TIMEOUT error. It raises an error outside a coroutine or for an unknown message name.
function Client:await_push(name, timeout)
  local co, main = coroutine.running()
  if co == nil or main then
    error("moonforge: await_push needs a coroutine: run the code with client:spawn(fn)", 2)
  end
  local off, timer
  off = self:on(name, function(msg, seq)
    off()
    timer.cancelled = true
    self:_resume(co, msg, seq)
  end)
  timer = {
    at = self.clock() + (timeout or self.options.request_timeout),
    fn = function()
      off()
      self:_resume(co, nil, errors.new(Code.TIMEOUT, "no " .. tostring(name) .. " push within the timeout"))
    end,
  }
  self._timers[#self._timers + 1] = timer
  return coroutine.yield()
end

-- sleep waits seconds inside a coroutine while update() goes on running everything else, and
-- returns true. It raises an error outside a coroutine or for a negative or non-number duration.
function Client:sleep(seconds)
  local co, main = coroutine.running()
  if co == nil or main then
    error("moonforge: sleep needs a coroutine: run the code with client:spawn(fn)", 2)
  end
  if type(seconds) ~= "number" or seconds < 0 or seconds ~= seconds then
    error("moonforge: sleep wants a number of seconds >= 0, got " .. tostring(seconds), 2)
  end
  self._timers[#self._timers + 1] = { at = self.clock() + seconds, fn = function() self:_resume(co, true) end }
  return coroutine.yield()
end

-- send sends a one-way message (seq 0): the server sends no reply. It returns true, or nil and
-- an error when it cannot go out.
function Client:send(name, msg)
  local md, payload, err = self:_encode(name, msg)
  if not md then
    return nil, err
  end
  local bytes = frame.encode(md.id, 0, 0, payload)
  if self:is_ready() then
    self:_write(bytes)
    return true
  end
  if self.state == "closed" or self.state == "idle" then
    return nil, errors.new(Code.UNAVAILABLE, "not connected")
  end
  self._outbox[#self._outbox + 1] = { bytes = bytes }
  return true
end

-- login sends LoginReq{method, account, secret, extra} and calls cb(err, ack) with the LoginAck.
-- Without cb it awaits (see await) and returns ack, err. A successful login starts a new
-- session: its token is kept for resuming, and push seqs start again from 1.
function Client:login(method, account, secret, extra, cb)
  local msg = { method = method, account = account or "", secret = secret or "", extra = extra or {} }
  local function start(done)
    return self:_request("moonforge.LoginReq", msg, function(err, ack)
      if not err then
        self.session = {
          player_id = ack.player_id,
          token = ack.token,
          expires_at_ms = tonumber(ack.expires_at_ms),
          refresh_token = ack.refresh_token,
          session_id = ack.session_id,
        }
        self.last_push_seq = 0
      end
      done(err, ack)
    end)
  end
  if cb then
    return start(cb)
  end
  return self:_await(start)
end

-- login_guest logs in with the guest method and a device id (16 to 128 bytes: make one random id
-- per install and keep it); see login.
function Client:login_guest(device_id, cb)
  return self:login("guest", device_id, "", nil, cb)
end

-- refresh trades the session's refresh token (good once) for a new access token and the next
-- refresh token, and calls cb(err, ack) with the RefreshAck; without cb it awaits. The client
-- refreshes by itself before resuming with an expired access token.
function Client:refresh(cb)
  local function start(done)
    if not (self.session and self.session.refresh_token and self.session.refresh_token ~= "") then
      local err = errors.new(Code.UNAUTHENTICATED, "no refresh token: log in first")
      self:_defer(function() done(err) end)
      return
    end
    return self:_refresh(done, false)
  end
  if cb then
    return start(cb)
  end
  return self:_await(start)
end

function Client:_refresh(done, internal)
  local session = self.session
  return self:_request("moonforge.RefreshReq", { refresh_token = session.refresh_token }, function(err, ack)
    if not err and self.session == session then
      session.token, session.expires_at_ms = ack.token, tonumber(ack.expires_at_ms)
      session.refresh_token = ack.refresh_token
    end
    done(err, ack)
  end, internal)
end

-- logout sends LogoutReq (all_sessions: every session of the player) and calls cb(err) once the
-- server revoked the tokens; without cb it awaits. The server then closes the connection, and
-- the client does not reconnect: log in again to play on.
function Client:logout(all_sessions, cb)
  local function start(done)
    return self:_request("moonforge.LogoutReq", { all_sessions = all_sessions and true or false }, function(err)
      if not err then
        self.session = nil
        self.last_push_seq, self._received_seq = 0, 0
        self._closing = true
      end
      done(err)
    end)
  end
  if cb then
    return start(cb)
  end
  return self:_await(start)
end

-- spawn runs fn(...) in a new coroutine at once, so that it may await; an error it raises goes
-- to on_error. It returns the coroutine.
function Client:spawn(fn, ...)
  local co = coroutine.create(fn)
  self:_resume(co, ...)
  return co
end

-- run_until calls update() until predicate() returns true or timeout seconds pass, waiting on the
-- socket in between: for scripts and tests, not for a game loop. It returns whether predicate
-- became true.
function Client:run_until(predicate, timeout)
  local deadline = self.clock() + (timeout or 10)
  while true do
    self:update()
    if predicate() then
      return true
    end
    local left = deadline - self.clock()
    if left <= 0 then
      return false
    end
    self.transport:wait(math.min(left, 0.01))
  end
end

-- update does everything that is due: connecting, reading and dispatching frames, writing,
-- heartbeat, timeouts, reconnecting, and running the callbacks, handlers and events that are
-- ready, at most max_work_per_update of them (the rest run in the next updates, in order). While
-- max_queued items wait, it reads no more frames: the server holds them. It never blocks and
-- never raises. Calls from inside a callback return at once.
function Client:update()
  if self._in_update then
    return
  end
  self._in_update = true
  local ok, err = pcall(self._update, self)
  self._in_update = false
  if not ok then
    self:_report("internal error in update: " .. tostring(err))
  end
end

-- queued returns how many callbacks, handlers and events wait for update().
function Client:queued()
  return self._qtail - self._qhead + 1
end

function Client:_update()
  local now = self.clock()
  if self.state == "waiting" and now >= self._retry_at then
    self:_dial()
  end
  if self.state == "connecting" then
    local status, err = self.transport:poll_connect()
    if status == "connected" then
      self:_connected(now)
    elseif status == nil then
      self:_lost("connect to " .. self:_where() .. ": " .. tostring(err))
    elseif now >= self._connect_deadline then
      self:_lost("connect to " .. self:_where() .. ": timed out")
    end
  end
  if self.state == "connected" then
    self:_read(now)
  end
  if self.state == "connected" then
    self:_heartbeat(now)
  end
  self:_expire(now)
  if self.state == "connected" then
    self:_flush()
  end
  self:_drain(self.options.max_work_per_update)
end

-- Internals. Everything below runs from update() or from a public method, on the client's thread.

function Client:_emit(event, info)
  local handlers = self._event_handlers
  self:_defer(function()
    for _, fn in ipairs(handlers) do
      self:_call(fn, event, info)
    end
  end)
end

-- _defer queues fn for update(); push marks a push handler, which close() drops.
function Client:_defer(fn, push)
  local t = self._qtail + 1
  self._qtail = t
  self._queue[t] = { fn = fn, push = push }
end

-- _drain runs up to budget queued items, those they queue included; with skip_pushes it drops
-- pushes instead of handling them. A nested call (close() from a callback) goes on where the
-- outer one is.
function Client:_drain(budget, skip_pushes)
  local ran = 0
  while ran < budget and self._qhead <= self._qtail do
    local q, h = self._queue, self._qhead
    local item = q[h]
    q[h] = nil
    self._qhead = h + 1
    if not (skip_pushes and item.push) then
      ran = ran + 1
      item.fn()
    end
  end
  if self._qhead > self._qtail then
    self._queue, self._qhead, self._qtail = {}, 1, 0
  end
end

-- _report hands message to on_error; an error there is written to stderr, never raised.
function Client:_report(message)
  local ok, err = pcall(self.on_error, message)
  if not ok then
    pcall(report, "on_error failed: " .. tostring(err) .. " (reporting: " .. tostring(message) .. ")")
  end
end

-- XPCALL_ARGS is whether xpcall passes arguments on to the function (not on Lua 5.1).
local XPCALL_ARGS = select(2, xpcall(function(a) return a end, debug.traceback, true)) == true
local unpack = table.unpack or unpack

function Client:_call(fn, ...)
  local ok, err
  if XPCALL_ARGS then
    ok, err = xpcall(fn, debug.traceback, ...)
  else
    local n, args = select("#", ...), { ... }
    ok, err = xpcall(function() return fn(unpack(args, 1, n)) end, debug.traceback)
  end
  if not ok then
    self:_report("callback error: " .. tostring(err))
  end
end

function Client:_resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then
    self:_report("coroutine error: " .. debug.traceback(co, tostring(err)))
  end
end

function Client:_await(start)
  local co, main = coroutine.running()
  if co == nil or main then
    error("moonforge: await needs a coroutine: pass a callback, or run the code with client:spawn(fn)", 3)
  end
  start(function(err, reply)
    self:_resume(co, reply, err)
  end)
  return coroutine.yield()
end

function Client:_encode(name, msg)
  local md = self.schema:message(name)
  if not md or not md.id then
    return nil, nil, errors.new(Code.UNKNOWN_MESSAGE, "unknown message " .. tostring(name) .. " (not in the schema, or it has no msg_id)")
  end
  local payload, err = self.codec.encode(md, msg or {})
  if not payload then
    return nil, nil, errors.new(Code.BAD_REQUEST, "encode: " .. err)
  end
  if #payload + frame.HEADER_SIZE > self.options.max_frame then
    return nil, nil, errors.new(Code.FRAME_TOO_LARGE, md.full_name .. " is " .. #payload .. " bytes, above the maximum frame size")
  end
  return md, payload
end

function Client:_next_seq()
  repeat
    self._seq = self._seq + 1
    if self._seq > MAX_SEQ then
      self._seq = 1
    end
  until self._pending[self._seq] == nil
  return self._seq
end

-- _request queues or sends a request; cb(err, reply) runs in update().
function Client:_request(name, msg, cb, internal)
  local md, payload, err = self:_encode(name, msg)
  if not md then
    self:_defer(function() self:_call(cb, err, nil) end)
    return nil, err
  end
  if self.state == "closed" or self.state == "idle" then
    err = errors.new(Code.UNAVAILABLE, "not connected: call connect() first")
    self:_defer(function() self:_call(cb, err, nil) end)
    return nil, err
  end
  local seq = self:_next_seq()
  local req = {
    seq = seq,
    name = md.full_name,
    cb = cb,
    deadline = self.clock() + self.options.request_timeout,
    bytes = frame.encode(md.id, 0, seq, payload),
  }
  self._pending[seq] = req
  if self:is_ready() or internal then
    req.sent = true
    self:_write(req.bytes)
  else
    self._outbox[#self._outbox + 1] = req
  end
  return seq
end

-- _finish ends a pending request with err or reply; its callback runs in order in update().
function Client:_finish(req, err, reply)
  if self._pending[req.seq] ~= req then
    return
  end
  self._pending[req.seq] = nil
  req.done = true
  self:_defer(function() self:_call(req.cb, err, reply) end)
end

function Client:_write(bytes)
  local w = self._wbuf
  w[#w + 1] = bytes
end

function Client:_flush()
  local w = self._wbuf
  while #w > 0 do
    if #w > 1 then
      w = { table.concat(w) }
      self._wbuf = w
    end
    local n, err = self.transport:send(w[1])
    if not n then
      self:_lost("write: " .. tostring(err))
      return
    end
    if n < #w[1] then
      w[1] = string.sub(w[1], n + 1)
      return
    end
    table.remove(w, 1)
  end
end

function Client:_connected(now)
  self.state = "connected"
  self._reader = frame.new_reader(self.options.max_frame)
  self._wbuf = {}
  self._last_recv = now
  self._next_ping = now + self.options.heartbeat
  local reconnect = self._attempts > 0 or self._was_connected or false
  self._was_connected = true
  self._attempts = 0
  self._untried = 0
  local a = self.addresses[self.address]
  self:_emit("connected", { host = a.host, port = a.port, reconnect = reconnect })
  if self.session then
    self:_resume_session()
  else
    self:_send_outbox()
  end
  self:_flush()
end

function Client:_send_outbox()
  local box = self._outbox
  self._outbox = {}
  for _, item in ipairs(box) do
    if not item.seq then
      self:_write(item.bytes)
    elseif not item.done then
      item.sent = true
      self:_write(item.bytes)
    end
  end
end

function Client:_fail_outbox(err)
  local box = self._outbox
  self._outbox = {}
  for _, item in ipairs(box) do
    if item.seq then
      self:_finish(item, err)
    end
  end
end

-- _resume_session sends ResumeReq before anything else on a new connection, after a RefreshReq
-- when the access token has expired.
function Client:_resume_session()
  self._resuming = true
  local s = self.session
  if s.expires_at_ms and s.refresh_token and s.refresh_token ~= "" and os.time() * 1000 >= s.expires_at_ms - 5000 then
    self:_refresh(function(err)
      if err and err.code ~= Code.TIMEOUT and err.code ~= Code.UNAVAILABLE then
        s.refresh_token = nil -- refused: ResumeReq with the old token fails and asks for a login
      end
      if self.state == "connected" and self.session == s then
        self:_send_resume()
      end
    end, true)
    return
  end
  self:_send_resume()
end

function Client:_send_resume()
  local token = self.session.token
  self:_request("moonforge.ResumeReq", { token = token, last_push_seq = self.last_push_seq }, function(err, ack)
    self._resuming = false
    if not err then
      if ack.token ~= "" then
        self.session.token = ack.token
      end
      self:_call_event("resumed", { player_id = ack.player_id, replayed = ack.replayed })
      self:_send_outbox()
      self:_flush()
    elseif err.code == Code.TIMEOUT or err.code == Code.UNAVAILABLE then
      -- The connection is failing; the next one tries again.
      if self.state == "connected" then
        self:_lost("resume: " .. err.message)
      end
    else
      local refresh = self.session.refresh_token
      self.session = nil
      self.last_push_seq, self._received_seq = 0, 0
      self:_fail_outbox(errors.new(err.code, "session lost: " .. err.message, 0, err.remote))
      self:_call_event("login_required", { code = err.code, name = err.name, message = err.message, refresh_token = refresh })
    end
  end, true)
end

-- _call_event runs the event handlers now (from a callback that already runs in order).
function Client:_call_event(event, info)
  for _, fn in ipairs(self._event_handlers) do
    self:_call(fn, event, info)
  end
end

-- _lost handles the end of a connection (or of an attempt): fails what was in flight, and
-- schedules a reconnection to the next address unless the client was closed or kicked for good.
-- A failed attempt of connect() moves to the next untried address at once.
function Client:_lost(reason)
  local was = self.state
  self.transport:close()
  self._reader = nil
  self._wbuf = {}
  self._resuming = false
  if (self._untried or 0) > 0 and not self._closing and was ~= "connected" then
    self._untried = self._untried - 1
    self.address = self.address % #self.addresses + 1
    self:_report(reason .. "; trying " .. self:_where())
    self:_dial()
    return
  end
  local lost = errors.new(Code.UNAVAILABLE, "connection lost: " .. reason)
  for _, req in pairs(self._pending) do
    if req.sent or self._closing then
      self:_finish(req, lost)
    end
  end
  local kick = self._kicked
  local reconnect = self.options.reconnect and not self._closing and (kick == nil or RECONNECT_AFTER_KICK[kick])
    and (self._was_connected or was == "waiting" or self._attempts > 0)
  if reconnect then
    self.address = self.address % #self.addresses + 1
    self._attempts = self._attempts + 1
    local delay = math.min(self.options.reconnect_max_delay, self.options.reconnect_delay * 2 ^ (self._attempts - 1))
    delay = delay * (0.75 + 0.5 * math.random())
    self.state = "waiting"
    self._retry_at = self.clock() + delay
    self._kicked = nil
    if was == "connected" then
      self:_emit("disconnected", { reason = reason, reconnecting = true, retry_in = delay })
    end
  else
    self.state = "closed"
    self:_fail_outbox(errors.new(Code.UNAVAILABLE, "not connected: " .. reason))
    if was == "connected" or was == "connecting" or was == "waiting" then
      self:_emit("disconnected", { reason = reason, reconnecting = false })
    end
  end
end

function Client:_read(now)
  local budget = 4 * self.options.max_frame
  self:_dispatch() -- frames held back while the queue was full
  while budget > 0 and self.state == "connected" and not self:_full() do
    local data, err = self.transport:receive()
    if data ~= "" then
      self._last_recv = now
      budget = budget - #data
      self._reader:feed(data)
      self:_dispatch()
    end
    if err then
      if self.state == "connected" then
        self:_lost(self._kicked and "kicked" or ("read: " .. tostring(err)))
      end
      return
    end
    if data == "" then
      return
    end
  end
end

-- _full reports whether the queue for update() holds max_queued items: then frames stay unread.
function Client:_full()
  return self:queued() >= self.options.max_queued
end

function Client:_dispatch()
  while self.state == "connected" and not self:_full() do
    local f, err = self._reader:next()
    if err then
      self:_report("the server broke the frame format: " .. tostring(err))
      self:_lost("protocol violation by the server: " .. err.message)
      return
    end
    if not f then
      return
    end
    if f.flags % 2 == 1 then
      self:_reply(f)
    elseif f.msg_id == MSG_KICK then
      self:_kick(f)
    else
      self:_push(f)
    end
  end
end

function Client:_reply(f)
  local req = self._pending[f.seq]
  if not req or not req.sent then
    return -- a late reply to a request that timed out
  end
  if f.msg_id == MSG_ERROR then
    local e, derr = self.codec.decode(self.schema.messages["moonforge.Error"], f.payload)
    if not e then
      self:_finish(req, errors.new(Code.DECODE_FAILED, "undecodable Error: " .. derr))
    else
      self:_finish(req, errors.new(e.code, e.message, e.retry_after_ms, true))
    end
    return
  end
  local md = self.schema:message_by_id(f.msg_id)
  if not md then
    self:_finish(req, errors.new(Code.UNKNOWN_MESSAGE, "reply with msg_id " .. f.msg_id .. ", which the schema lacks"))
    return
  end
  local reply, derr = self.codec.decode(md, f.payload)
  if not reply then
    self:_finish(req, errors.new(Code.DECODE_FAILED, derr))
    return
  end
  if req.name == "moonforge.LoginReq" then
    self._received_seq = 0 -- a new session: its pushes, read next, count from 1
  end
  self:_finish(req, nil, reply)
end

function Client:_kick(f)
  local k = self.codec.decode(self.schema.messages["moonforge.Kick"], f.payload) or { code = 0, reason = "" }
  self._kicked = k.code
  self:_emit("kicked", { code = k.code, name = errors.name(k.code), reason = k.reason })
  if self.transport.ends_on_kick then
    self:_lost("kicked")
  end
end

function Client:_push(f)
  local seq = f.seq
  if seq ~= 0 then
    if seq <= self._received_seq then
      return -- delivered already (a replay after resume)
    end
    self._received_seq = seq
  end
  local md = self.schema:message_by_id(f.msg_id)
  self:_defer(function()
    local msg, err
    if md then
      msg, err = self.codec.decode(md, f.payload)
    else
      err = "push with msg_id " .. f.msg_id .. ", which the schema lacks"
    end
    if msg then
      for _, fn in ipairs(self._handlers[md.full_name] or {}) do
        self:_call(fn, msg, seq)
      end
      for _, fn in ipairs(self._handlers["*"] or {}) do
        self:_call(fn, msg, seq, md.name)
      end
    else
      self:_report("push " .. seq .. " dropped: " .. tostring(err))
    end
    if seq > self.last_push_seq then
      self.last_push_seq = seq
    end
  end, true)
end

function Client:_heartbeat(now)
  local hb = self.options.heartbeat
  if hb <= 0 then
    return
  end
  if self:_full() then
    self._last_recv = now -- not reading, so silence proves nothing
  elseif now - self._last_recv > 3 * hb then
    self:_lost("no data from the server for " .. 3 * hb .. " s")
    return
  end
  if now >= self._next_ping then
    self._next_ping = now + hb
    local sent = now
    self:_request("moonforge.Ping", { client_time_ms = floor(now * 1000), ack_push_seq = self.last_push_seq }, function(err)
      if not err then
        self.rtt = self.clock() - sent
      end
    end, true)
  end
end

function Client:_expire(now)
  for _, req in pairs(self._pending) do
    if now >= req.deadline then
      self:_finish(req, errors.new(Code.TIMEOUT, "no reply to " .. req.name .. " within " .. self.options.request_timeout .. " s"))
    end
  end
  local box = self._outbox
  for i = #box, 1, -1 do
    if box[i].done then
      table.remove(box, i)
    end
  end
  local timers = self._timers
  for i = #timers, 1, -1 do
    local t = timers[i]
    if t.cancelled then
      table.remove(timers, i)
    elseif now >= t.at then
      table.remove(timers, i)
      self:_defer(t.fn)
    end
  end
end

return Client
