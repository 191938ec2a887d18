-- Player profiles: each player's PlayerData (proto/demo/demo.proto) through mf.player.data. The
-- table is changed in place and saved behind; a purchase is saved before its reply.
local MAX_NAME = 24 -- bytes

-- profile returns the player's data, set up on the player's first visit.
local function profile(ctx)
  local me = mf.player.data(ctx)
  if me.level == 0 then
    me.level = 1
    me.gold = 100
    me.name = "player-" .. string.sub(ctx.player_id, 1, 8)
  end
  return me
end

mf.handle("ProfileReq", function(ctx, req)
  return "ProfileAck", { data = profile(ctx) }
end)

mf.handle("RenameReq", function(ctx, req)
  if req.name == "" or #req.name > MAX_NAME then
    mf.error(mf.code.BAD_REQUEST, "a name has 1 to " .. MAX_NAME .. " bytes")
  end
  local me = profile(ctx)
  me.name = req.name
  return "ProfileAck", { data = me }
end)

mf.handle("QuestDoneReq", function(ctx, req)
  local me = profile(ctx)
  me.xp = me.xp + req.xp
  me.gold = me.gold + req.gold
  me.level = 1 + math.floor(me.xp / 100)
  return "ProfileAck", { data = me }
end)

mf.handle("BuyReq", function(ctx, req)
  if req.item == "" then mf.error(mf.code.BAD_REQUEST, "no item") end
  local me = profile(ctx)
  if me.gold < req.price then mf.error(1301, "not enough gold") end
  me.gold = me.gold - req.price
  me.items[#me.items + 1] = req.item
  mf.player.save(ctx) -- the purchase is in the store before the player hears of it
  return "BuyAck", { gold = me.gold, items = me.items }
end)
