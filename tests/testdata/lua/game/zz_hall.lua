-- Test-only room type (tests/testdata): a hall that stays open when empty, and refuses a join
-- whose args ask for it.
local hall = mf.room_type("hall", { tick_hz = 5, max_players = 4, keep_empty = true })

function hall.on_join(room, player, args)
  if args and args.refuse then mf.error(1700, "refused") end
  return {}
end
