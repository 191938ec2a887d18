-- Player statistics, kept by the actors that write them (chat, lobby, arena room).
local counter = require("shared.counter")

mf.handle("StatsReq", function(ctx, req)
  local id = ctx.player_id
  return "StatsAck", { stats = {
    chats_sent = counter.get("chat/sent/" .. id),
    arena_joins = counter.get("arena/joins/" .. id),
    arena_moves = counter.get("arena/moves/" .. id),
  } }
end)
