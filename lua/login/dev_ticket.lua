-- An example of a custom login method, as a platform integration would write one: check the
-- ticket the client sends in LoginReq.secret and return the account id it vouches for. Here a
-- ticket "dev:<name>" stands for account <name>; a real method would verify a signature or ask
-- the platform's server. Accounts of this method are kept apart from guest and password accounts.
-- Anyone can forge such a ticket, so the method exists only in development mode (mf.dev).
if mf.dev then
  mf.login("dev_ticket", function(ctx, req)
    local account = req.secret:match("^dev:([%w_%-]+)$")
    if not account then mf.error(mf.code.UNAUTHENTICATED, "bad ticket") end
    return account
  end)
end
