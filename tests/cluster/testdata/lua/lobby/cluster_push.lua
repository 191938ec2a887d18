-- The cluster tests' pusher: a lobby handler that pushes n to a player, wherever its session is.
mf.handle("PushReq", function(ctx, req)
  mf.push(req.player, "Pushed", {n = req.n})
  return "PushAck", {}
end)
