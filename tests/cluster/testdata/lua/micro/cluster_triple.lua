-- The cluster tests' third role: triples n.
mf.serve("triple", function(ctx, args)
  return {n = args.n * 3, role = mf.role}
end)
