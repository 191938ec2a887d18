-- The cluster tests' served name: doubles n on a game node.
mf.serve("double", function(ctx, args)
  return {n = args.n * 2, role = mf.role}
end)
