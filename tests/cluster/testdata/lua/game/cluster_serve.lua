-- The cluster tests' served name: doubles n on a game node.
mf.serve("double", function(ctx, args)
  return {n = args.n * 2, role = mf.role}
end)

-- A served function that waits: it asks the micro role and returns its answer, plus one.
mf.serve("relay", function(ctx, args)
  local out = mf.call("micro", "triple", {n = args.n}, {timeout = 1})
  return {n = out.n + 1, role = mf.role .. ">" .. out.role}
end)
