-- Test-only handlers (tests/testdata): errors, an endless loop, the identity of the answering
-- actor, and a message the tests send one-way. State lives in this actor's module table.
local state = mf.module("tests.zz")
state.id = state.id or tostring(state)
state.calls = state.calls or 0
state.note = state.note or ""

mf.handle("FailReq", function(ctx, req)
  mf.error(req.code, req.message)
end)

mf.handle("CrashReq", function(ctx, req)
  local missing = nil
  return "WhoAck", { actor = missing.field } -- line 14: attempt to index a nil value
end)

mf.handle("LoopReq", function(ctx, req)
  local n = 0
  while true do n = n + 1 end
end)

mf.handle("WhoReq", function(ctx, req)
  state.calls = state.calls + 1
  return "WhoAck", { actor = state.id, calls = state.calls, note = state.note }
end)

mf.handle("NoteReq", function(ctx, req)
  if req.text == "bad reply" then return "WhoAck", { calls = "many" } end -- a string for a uint32
  state.note = req.text
  return "NoteAck", { text = req.text }
end)

-- HallReq makes a new hall and joins it (refused when req.refuse: the creator's join fails).
mf.handle("HallReq", function(ctx, req)
  local id = mf.room.create("hall")
  mf.room.join(id, ctx.player_id, { refuse = req.refuse })
  return "HallAck", { room_id = id }
end)
