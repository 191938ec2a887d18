-- The cluster tests' placement probe: the id of the lobby node that handles the player.
mf.handle("WhereReq", function(ctx, req)
  return "WhereAck", { node = mf.node }
end)
