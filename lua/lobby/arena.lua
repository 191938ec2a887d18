-- Arena matchmaking: join a given room, or any arena with space, or a new one.
local counter = require("shared.counter")

local function find_room()
  for _, r in ipairs(mf.room.list("arena")) do
    if r.players < r.max_players then return r.id end
  end
  return mf.room.create("arena")
end

mf.handle("ArenaJoinReq", function(ctx, req)
  local room_id = req.room_id
  local joined
  if req.new_room then
    room_id = mf.room.create("arena")
    joined = mf.room.join(room_id, ctx.player_id)
  elseif room_id ~= "" then
    joined = mf.room.join(room_id, ctx.player_id)
  else
    room_id = find_room()
    local ok, result = pcall(mf.room.join, room_id, ctx.player_id)
    if not ok then -- it filled up meanwhile: open a new one
      room_id = mf.room.create("arena")
      result = mf.room.join(room_id, ctx.player_id)
    end
    joined = result
  end
  counter.add("arena/joins/" .. ctx.player_id, 1)
  return "ArenaJoinAck", { room_id = room_id, pos = joined.pos, players = joined.players }
end)

mf.handle("ArenaLeaveReq", function(ctx, req)
  if not mf.room.of(ctx.player_id) then mf.error(mf.code.BAD_REQUEST, "not in an arena") end
  local left = mf.room.leave(ctx.player_id) or {}
  return "ArenaLeaveAck", { moves = left.moves or 0 }
end)
