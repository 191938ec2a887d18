-- Duel's lobby side (examples/duel): a queue that pairs players by arrival into a "duel" room,
-- the answer to a pick from a player in no duel, the duel's status (asked of the room) and the
-- saved record.
local queue = mf.module("duel.queue") -- queue.waiting: the id of the player waiting, or nil

-- Every queue request and the session-end hook run on the one actor of this key: they share
-- queue.waiting.
local QUEUE = { key = "duel_queue" }

-- A player whose session ended leaves the queue.
mf.on_session_end(function(player_id)
  if queue.waiting == player_id then queue.waiting = nil end
end, QUEUE)

mf.handle("duel.QueueReq", function(ctx)
  local me = ctx.player_id
  if mf.room.of(me) then mf.error(1409, "already in a room") end
  local other = queue.waiting
  if other == me then return "duel.QueueAck", { matched = false } end
  if other and not mf.player.online(other) then other = nil end
  if not other then
    queue.waiting = me
    return "duel.QueueAck", { matched = false }
  end
  queue.waiting = nil
  local room_id = mf.room.create("duel", {})
  if not pcall(mf.room.join, room_id, other) then
    -- The opponent went offline meanwhile: drop the room, wait for the next one.
    mf.room.call(room_id, "cancel", {})
    queue.waiting = me
    return "duel.QueueAck", { matched = false }
  end
  mf.room.join(room_id, me)
  return "duel.QueueAck", { matched = true, room_id = room_id }
end, QUEUE)

mf.handle("duel.UnqueueReq", function(ctx)
  if queue.waiting ~= ctx.player_id then return "duel.UnqueueAck", { removed = false } end
  queue.waiting = nil
  return "duel.UnqueueAck", { removed = true }
end, QUEUE)

-- The duel room takes PickReq from its players; this handler answers everybody else.
mf.handle("duel.PickReq", function()
  mf.error(1404, "not in a duel")
end)

mf.handle("duel.StatusReq", function(ctx)
  local room_id = mf.room.of(ctx.player_id)
  if not room_id then mf.error(1404, "not in a duel") end
  local status = mf.room.call(room_id, "status", { player_id = ctx.player_id })
  status.room_id = room_id
  return "duel.StatusAck", status
end)

mf.handle("duel.RecordReq", function(ctx)
  local r = mf.db.get("duel/record/" .. ctx.player_id) or {}
  return "duel.RecordAck", { wins = r.wins or 0, losses = r.losses or 0 }
end)
