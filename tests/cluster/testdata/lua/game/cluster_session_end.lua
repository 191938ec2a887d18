-- The cluster tests' session-end hook: the game role counts the sessions that ended on any proxy.
local ends = mf.module("cluster.session_ends")
ends.n = ends.n or 0

mf.on_session_end(function(player_id, reason)
  ends.n = ends.n + 1
  ends.last = reason
end)

mf.serve("session_ends", function(ctx, args)
  return {n = ends.n, role = ends.last or ""}
end)
