-- The cluster tests' caller: a lobby handler that calls a served name on another role or node.
mf.handle("CallReq", function(ctx, req)
  local opts = {timeout = 2}
  if req.via ~= "" then opts.via = req.via end
  local out = mf.call(req.target, req.name, {n = req.n}, opts)
  return "CallAck", {n = out.n, role = out.role}
end)
