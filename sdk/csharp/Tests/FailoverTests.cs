using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Demo;

namespace Moonforge.Tests
{
    /// <summary>
    /// Several endpoints against real servers: the first endpoint is dead, so ConnectAsync moves on to
    /// the second; that server is then killed mid-session, and the client reconnects to the third,
    /// where the resume fails (the server does not know the session), LoginRequired is raised, and the
    /// game logs in again and plays on.
    /// </summary>
    internal static class FailoverTests
    {
        // LoginAgain does what a game does on LoginRequired: restore the player with the refresh token
        // (which works across the proxies of one cluster, whose login store is shared), else log in
        // anew. The two servers here share nothing, so the restore is refused.
        private static async Task LoginAgain(MoonforgeClient client, string device, Check check)
        {
            string refresh = client.RefreshToken;
            check.True(!string.IsNullOrEmpty(refresh), "the refresh token is kept after a failed resume");
            try
            {
                await client.RestoreSessionAsync(refresh);
                check.Fail("the second server restored a session of the first");
            }
            catch (MoonforgeException e)
            {
                check.Equal(ErrorCode.Unauthenticated, e.Code, "restore on the second server");
                await client.LoginGuestAsync(device);
            }
        }

        internal static int Run(string host, int deadPort, int firstPort, int secondPort, int firstPid)
        {
            var check = new Check();
            var events = new List<ClientEvent>();
            var logged = new List<string>();
            var client = new MoonforgeClient(new ClientOptions
            {
                Endpoints = new[] { host + ":" + deadPort, host + ":" + firstPort, host + ":" + secondPort },
                HeartbeatInterval = TimeSpan.FromSeconds(1),
                RequestTimeout = TimeSpan.FromSeconds(5),
                ReconnectDelay = TimeSpan.FromMilliseconds(200),
                Log = s =>
                {
                    lock (logged) logged.Add(s);
                    Console.WriteLine("  " + s);
                },
            });
            string device = "cs-failover-" + Guid.NewGuid().ToString("N").Substring(0, 10);
            Task relogin = null;
            client.EventRaised += (ev, info) =>
            {
                lock (events) events.Add(ev);
                if (ev == ClientEvent.LoginRequired) relogin = LoginAgain(client, device, check);
            };
            Func<ClientEvent, int> count = ev =>
            {
                lock (events) return events.FindAll(e => e == ev).Count;
            };
            Task play = Task.Run(async () =>
            {
                await client.ConnectAsync();
                lock (logged) check.True(logged.Exists(s => s.Contains(":" + deadPort) && s.Contains("trying the next endpoint")), "the dead first endpoint is logged and skipped");
                LoginAck first = await client.LoginGuestAsync(device);
                ChatSendAck sent = await client.ChatSendAsync(new ChatSendReq { Text = "before the failover" });
                check.True(sent.Index > 0, "chat on the first live server");

                Process.GetProcessById(firstPid).Kill();
                var sw = Stopwatch.StartNew();
                while (relogin == null && sw.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(10);
                check.True(relogin != null, "LoginRequired after the resume on the next server failed");
                if (relogin == null) return;
                await relogin;
                check.True(client.IsLoggedIn && client.PlayerId != "", "logged in again on the next server");
                check.True(client.PlayerId != first.PlayerId, "a new player on the second server (it has its own store): " + client.PlayerId);
                ChatSendAck again = await client.ChatSendAsync(new ChatSendReq { Text = "after the failover" });
                check.True(again.Index > 0, "chat on the second server");
            });
            var limit = Stopwatch.StartNew();
            while (!play.IsCompleted && limit.Elapsed < TimeSpan.FromSeconds(60))
            {
                client.Update();
                Thread.Sleep(1);
            }
            try
            {
                if (!play.Wait(TimeSpan.FromSeconds(1))) check.Fail("failover scenario still running after 60 s");
            }
            catch (AggregateException e)
            {
                check.Fail("failover scenario stopped: " + e.InnerException);
            }
            client.Update();
            check.True(count(ClientEvent.Disconnected) >= 1 && count(ClientEvent.Reconnecting) >= 1, "Disconnected and Reconnecting after the kill");
            check.Equal(2, count(ClientEvent.Connected), "Connected events (first server, then second)");
            check.Equal(1, count(ClientEvent.LoginRequired), "LoginRequired events");
            check.Equal(0, count(ClientEvent.Resumed), "Resumed events");
            client.Close();
            return check.Finish("failover");
        }
    }
}
