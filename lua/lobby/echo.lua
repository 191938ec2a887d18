-- Echo: the reply carries the request back (the load tool's echo scenario).
mf.handle("EchoReq", function(ctx, req)
  return "EchoAck", req
end)
