-- PathReq asks the Go path-finder that the studio's binary registered as mf.ext.paths.
local paths = mf.ext.paths

mf.handle("PathReq", function(ctx, req)
  local steps = paths:Length(req.x0, req.y0, req.x1, req.y1)
  if steps < 0 then
    mf.error(mf.code.BAD_REQUEST, "no path")
  end
  return "PathAck", { steps = steps, searches = paths:Searches(), note = "shortest" }
end)
