using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Demo;

namespace Moonforge.Tests
{
    // The client under the conditions a game puts it in: tokens cancelled while a request starts, a
    // Log callback that throws, Close from OnDestroy with awaits pending, connections that die at
    // once, and an app paused while pushes pile up.
    internal static partial class ClientTests
    {
        // CancelWhileStarting races 20,000 cancellations with the start of their requests: each task
        // ends exactly once, cancelled, and RequestAsync never throws.
        private static void CancelWhileStarting(Check check)
        {
            var servers = new List<ScriptedServer>();
            var client = new MoonforgeClient(Options(servers, false, TimeSpan.Zero));
            client.ConnectAsync().Wait();
            const int n = 20000;
            var tasks = new List<Task<StatsAck>>(n);
            int thrown = 0, ended = 0;
            string firstThrown = null;
            var rnd = new Random(18);
            for (int i = 0; i < n; i++)
            {
                var cts = new CancellationTokenSource();
                int mode = rnd.Next(3);
                if (mode == 0) ThreadPool.QueueUserWorkItem(_ => cts.Cancel());
                else if (mode == 1) cts.CancelAfter(rnd.Next(2));
                try
                {
                    Task<StatsAck> t = client.StatsAsync(new StatsReq(), TimeSpan.FromSeconds(30), cts.Token);
                    t.ContinueWith(_ => Interlocked.Increment(ref ended), TaskContinuationOptions.ExecuteSynchronously);
                    tasks.Add(t);
                }
                catch (Exception e)
                {
                    thrown++;
                    if (firstThrown == null) firstThrown = e.ToString();
                }
                if (mode == 2) cts.Cancel();
                if (i % 500 == 0) client.Update();
            }
            check.True(thrown == 0, "RequestAsync threw " + thrown + " times in " + n + " cancelled starts: " + firstThrown);
            check.True(Pump(client, () => tasks.TrueForAll(t => t.IsCompleted)), "every cancelled request ended");
            check.True(tasks.TrueForAll(t => t.IsCanceled), "every one cancelled (no other outcome)");
            Thread.Sleep(50);
            client.Update();
            check.Equal(tasks.Count, Volatile.Read(ref ended), "each task ended exactly once");
            client.Close();
        }

        // ThrowingLog: a Log callback that throws does not stop the reconnect loop.
        private static void ThrowingLog(Check check)
        {
            var servers = new List<ScriptedServer>();
            ClientOptions o = Options(servers, true, TimeSpan.Zero);
            int logged = 0;
            o.Log = s =>
            {
                Interlocked.Increment(ref logged);
                throw new InvalidOperationException("Log touched a Unity object off the main thread");
            };
            int made = 0;
            o.TransportFactory = opts =>
            {
                var s = new ScriptedServer(true);
                // The 2nd and 3rd connections fail: the reconnect loop logs each failure.
                int k = Interlocked.Increment(ref made);
                if (k == 2 || k == 3) s.FailConnect = true;
                lock (servers) servers.Add(s);
                return s;
            };
            var client = new MoonforgeClient(o);
            client.ConnectAsync().Wait();
            Server(servers, 0).Abort();
            check.True(Pump(client, () => Server(servers, 3) != null && client.IsConnected), "reconnected after two failed attempts whose Log threw");
            check.True(Volatile.Read(ref logged) >= 2, "the failures were logged: " + logged);
            client.On<ChatMessage>(m => { throw new Exception("handler failed"); });
            client.EventRaised += (ev, info) => { throw new Exception("event handler failed"); };
            Server(servers, 3).Push(0, new ChatMessage());
            check.True(Pump(client, () => client.Update() == 0 && Volatile.Read(ref logged) >= 3), "throwing handlers and Log are contained in Update");
            client.Close();
        }

        // CloseCompletesAtOnce: Close (as from OnDestroy, with no Update after it) ends every task at
        // once: in flight, answered but not yet handed over, cancelled, held for a resume.
        private static void CloseCompletesAtOnce(Check check)
        {
            var servers = new List<ScriptedServer>();
            var client = new MoonforgeClient(Options(servers, false, TimeSpan.Zero));
            client.ConnectAsync().Wait();
            ScriptedServer s = Server(servers, 0);
            Task<StatsAck> inFlight = client.StatsAsync(new StatsReq());
            Task<StatsAck> answered = client.StatsAsync(new StatsReq());
            var cts = new CancellationTokenSource();
            Task<StatsAck> cancelled = client.StatsAsync(new StatsReq(), cts.Token);
            s.NextSent(f => f.Seq == 1);
            Frame second = s.NextSent(f => f.Seq == 2);
            s.Reply(second, new StatsAck { Stats = new PlayerStats { ChatsSent = 3 } });
            cts.Cancel();
            Thread.Sleep(100);
            client.Close();
            check.True(inFlight.IsFaulted && ((MoonforgeException)inFlight.Exception.InnerException).Code == ErrorCode.Unavailable, "Close fails a request in flight at once");
            check.True(answered.IsCompleted && answered.Status == TaskStatus.RanToCompletion && answered.Result.Stats.ChatsSent == 3, "Close hands over a reply that arrived before it: " + answered.Status);
            check.True(cancelled.IsCanceled, "Close completes a cancelled request as cancelled: " + cancelled.Status);
            Task<StatsAck> late = client.StatsAsync(new StatsReq());
            check.True(late.IsFaulted, "a request after Close fails at once");
        }

        // LossCompletesAtOnce: a lost connection fails the requests that were on it without an Update.
        private static void LossCompletesAtOnce(Check check)
        {
            var servers = new List<ScriptedServer>();
            ClientOptions o = Options(servers, false, TimeSpan.Zero);
            o.Reconnect = false;
            var client = new MoonforgeClient(o);
            client.ConnectAsync().Wait();
            Task<StatsAck> t = client.StatsAsync(new StatsReq());
            Server(servers, 0).NextSent(f => f.MsgId == StatsReq.MessageId);
            Server(servers, 0).Abort();
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (!t.IsCompleted && sw.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(2);
            check.True(t.IsFaulted && ((MoonforgeException)t.Exception.InnerException).Code == ErrorCode.Unavailable, "a lost connection fails its requests without an Update: " + t.Status);
            client.Close();
        }

        // HeartbeatNeverLeaks: connections that die at once, and a Close racing a reconnect, leave no
        // heartbeat timer running.
        private static void HeartbeatNeverLeaks(Check check)
        {
            var servers = new List<ScriptedServer>();
            ClientOptions o = Options(servers, true, TimeSpan.FromMilliseconds(20));
            o.ReconnectDelay = TimeSpan.FromMilliseconds(1);
            o.ReconnectMaxDelay = TimeSpan.FromMilliseconds(1);
            o.TransportFactory = opts =>
            {
                var s = new ScriptedServer(true) { DieAtOnce = true };
                lock (servers) servers.Add(s);
                return s;
            };
            var client = new MoonforgeClient(o);
            client.ConnectAsync().Wait();
            check.True(Pump(client, () => Server(servers, 300) != null), "300 connections that died at once");
            client.Close();
            Thread.Sleep(100);
            check.Equal(0, client.LiveHeartbeats, "heartbeat timers left running");
        }

        // BoundedUpdate: pushes that pile up while the game does not call Update wait in a bounded
        // queue, and each Update runs at most MaxWorkPerUpdate of them, in order, each once.
        private static void BoundedUpdate(Check check)
        {
            var servers = new List<ScriptedServer>();
            ClientOptions o = Options(servers, true, TimeSpan.Zero);
            o.MaxWorkPerUpdate = 10;
            o.MaxQueuedWork = 50;
            var client = new MoonforgeClient(o);
            var seqs = new List<uint>();
            client.On<ChatMessage>((m, seq) => seqs.Add(seq));
            client.ConnectAsync().Wait();
            client.Update();
            for (uint i = 1; i <= 300; i++) Server(servers, 0).Push(i, new ChatMessage { Index = i });
            Thread.Sleep(300);
            check.True(client.QueuedWork <= 50, "the queue holds at most MaxQueuedWork: " + client.QueuedWork);
            int most = 0;
            check.True(Pump(client, () =>
            {
                most = Math.Max(most, client.Update());
                return seqs.Count == 300;
            }), "all 300 pushes handled");
            check.True(most <= 10, "at most MaxWorkPerUpdate per Update: " + most);
            bool inOrder = true;
            for (int i = 0; i < seqs.Count; i++) inOrder &= seqs[i] == i + 1;
            check.True(inOrder, "each push once, in order");
            client.Close();
        }

        // SimulatedLossAtOnce: SimulateNetworkLoss takes effect before it returns; requests made after
        // it wait for the resume.
        private static void SimulatedLossAtOnce(Check check)
        {
            var servers = new List<ScriptedServer>();
            var client = new MoonforgeClient(Options(servers, true, TimeSpan.Zero));
            client.ConnectAsync().Wait();
            Task<LoginAck> login = client.LoginGuestAsync("dev-1");
            Server(servers, 0).Reply(Server(servers, 0).NextSent(f => f.MsgId == LoginReq.MessageId), new LoginAck { PlayerId = "p1", Token = "t1" });
            check.True(Pump(client, () => login.IsCompleted), "login");
            Task<StatsAck> inFlight = client.StatsAsync(new StatsReq());
            Server(servers, 0).NextSent(f => f.MsgId == StatsReq.MessageId);
            client.SimulateNetworkLoss();
            check.True(!client.IsConnected, "IsConnected is false when SimulateNetworkLoss returns");
            check.True(inFlight.IsFaulted && ((MoonforgeException)inFlight.Exception.InnerException).Code == ErrorCode.Unavailable, "the request in flight failed at once");
            Task<StatsAck> after = client.StatsAsync(new StatsReq());
            check.True(Pump(client, () => Server(servers, 1) != null), "reconnected");
            Frame resume = Server(servers, 1).NextSent(f => f.MsgId == ResumeReq.MessageId);
            check.True(!Server(servers, 1).SentAny(f => f.MsgId == StatsReq.MessageId), "the request waits for the resume");
            Server(servers, 1).Reply(resume, new ResumeAck { PlayerId = "p1", Token = "t2" });
            Server(servers, 1).Reply(Server(servers, 1).NextSent(f => f.MsgId == StatsReq.MessageId), new StatsAck());
            check.True(Pump(client, () => after.IsCompleted) && after.Status == TaskStatus.RanToCompletion, "and is answered after it");
            client.Close();
        }

        // NamedEvents: disconnections carry a reason name, codes are names, and each kind of event has
        // its own C# event beside EventRaised; a throwing handler does not stop the others.
        private static void NamedEvents(Check check)
        {
            var servers = new List<ScriptedServer>();
            var client = new MoonforgeClient(Options(servers, false, TimeSpan.FromMilliseconds(50)));
            var seen = new List<string>();
            client.EventRaised += (ev, info) => { throw new Exception("first handler fails"); };
            client.Connected += info => seen.Add("connected");
            client.Reconnecting += info => seen.Add("reconnecting " + info.Attempt);
            client.Disconnected += info => seen.Add("disconnected " + info.Disconnect + " " + info);
            client.ConnectAsync().Wait();
            check.True(Pump(client, () => seen.Exists(s => s.StartsWith("reconnecting 1"))), "Connected, Disconnected and Reconnecting: " + string.Join("; ", seen.ToArray()));
            string d = seen.Find(s => s.StartsWith("disconnected"));
            check.True(d != null && d.StartsWith("disconnected ServerSilent ServerSilent, will reconnect"), "a silent server is ServerSilent: " + d);
            check.True(d != null && !d.Contains("CODE_"), "no CODE_ name: " + d);
            check.True(seen[0] == "connected", "Connected first: " + seen[0]);
            client.Close();
            var closed = new List<EventInfo>();
            client.Disconnected += closed.Add;
            client.Update();
            check.True(closed.Count == 1 && closed[0].Disconnect == DisconnectReason.ClosedByClient && closed[0].ToString() == "ClosedByClient, no reconnect: closed by the client", "Close: " + (closed.Count > 0 ? closed[0].ToString() : "none"));
            check.Equal("NONE", ErrorCodes.Name(ErrorCode.None), "code 0");

            servers = new List<ScriptedServer>();
            client = new MoonforgeClient(Options(servers, true, TimeSpan.Zero));
            var kicked = new List<EventInfo>();
            var gone = new List<EventInfo>();
            client.Kicked += kicked.Add;
            client.Disconnected += gone.Add;
            client.ConnectAsync().Wait();
            Server(servers, 0).Push(0, new Kick { Code = (uint)ErrorCode.KickedDuplicateLogin, Reason = "elsewhere" });
            check.True(Pump(client, () => kicked.Count == 1), "Kicked event");
            Server(servers, 0).Abort();
            check.True(Pump(client, () => gone.Count == 1), "Disconnected after the kick");
            check.True(gone[0].Disconnect == DisconnectReason.Kicked && gone[0].Code == ErrorCode.KickedDuplicateLogin && gone[0].ToString().StartsWith("Kicked, no reconnect KICKED_DUPLICATE_LOGIN"), "Disconnected names the kick: " + gone[0]);
            client.Close();
        }

        // CatchAllPushes: OnAny sees every push after the typed handlers; a push nobody handles is
        // logged once per type.
        private static void CatchAllPushes(Check check)
        {
            var servers = new List<ScriptedServer>();
            ClientOptions o = Options(servers, true, TimeSpan.Zero);
            var logged = new List<string>();
            o.Log = s => { lock (logged) logged.Add(s); };
            var client = new MoonforgeClient(o);
            var order = new List<string>();
            client.ConnectAsync().Wait();
            Server(servers, 0).Push(1, new ArenaEvent());
            Server(servers, 0).Push(2, new ArenaEvent());
            check.True(Pump(client, () => client.LastPushSeq == 2 && client.QueuedWork == 0), "two unhandled pushes");
            client.On<ChatMessage>((m, seq) => order.Add("chat " + seq));
            IDisposable any = client.OnAny((m, seq) => order.Add("any " + m.GetType().Name + " " + seq));
            Server(servers, 0).Push(3, new ChatMessage());
            Server(servers, 0).Push(4, new ArenaState());
            check.True(Pump(client, () => order.Count == 3), "handled: " + string.Join(", ", order.ToArray()));
            check.Equal("chat 3, any ChatMessage 3, any ArenaState 4", string.Join(", ", order.ToArray()), "typed handlers first, then OnAny");
            any.Dispose();
            Server(servers, 0).Push(5, new ArenaState());
            Server(servers, 0).Push(6, new ArenaState());
            check.True(Pump(client, () => client.LastPushSeq == 6 && client.QueuedWork == 0), "two more");
            lock (logged)
            {
                check.Equal(1, logged.FindAll(s => s.Contains("no handler for push demo.ArenaEvent")).Count, "unhandled ArenaEvent logged once");
                check.Equal(1, logged.FindAll(s => s.Contains("no handler for push demo.ArenaState")).Count, "unhandled ArenaState logged once");
            }
            client.Close();
        }

        // RestoreSession: after a restart, a kept refresh token gives a new session in one call:
        // RefreshReq, then a token login with the new access token.
        private static void RestoreSession(Check check)
        {
            var servers = new List<ScriptedServer>();
            var client = new MoonforgeClient(Options(servers, true, TimeSpan.Zero));
            client.ConnectAsync().Wait();
            Task<LoginAck> restored = client.RestoreSessionAsync("r1");
            Frame refresh = Server(servers, 0).NextSent(f => f.MsgId == RefreshReq.MessageId);
            check.Equal("r1", Proto.Decode<RefreshReq>(refresh.Payload).RefreshToken, "RefreshReq carries the kept refresh token");
            Server(servers, 0).Reply(refresh, new RefreshAck { Token = "t2", RefreshToken = "r2" });
            check.True(Pump(client, () => Server(servers, 0).SentAny(f => f.MsgId == LoginReq.MessageId)), "then a login, sent from Update");
            Frame login = Server(servers, 0).NextSent(f => f.MsgId == LoginReq.MessageId);
            var req = Proto.Decode<LoginReq>(login.Payload);
            check.True(req.Method == "token" && req.Secret == "t2", "LoginReq with the token method and the new access token: " + req);
            Server(servers, 0).Reply(login, new LoginAck { PlayerId = "p1", Token = "t3", SessionId = "s2", RefreshToken = "r3" });
            check.True(Pump(client, () => restored.IsCompleted) && restored.Status == TaskStatus.RanToCompletion && restored.Result.PlayerId == "p1", "restored: " + restored.Status);
            check.True(client.RefreshToken == "r3" && client.Token == "t3" && client.IsLoggedIn, "the new session's tokens");

            Task<LoginAck> refused = client.RestoreSessionAsync("r1");
            Server(servers, 0).ReplyError(Server(servers, 0).NextSent(f => f.MsgId == RefreshReq.MessageId), (uint)ErrorCode.Unauthenticated, "refresh token used");
            check.True(Pump(client, () => refused.IsCompleted) && ((MoonforgeException)refused.Exception.InnerException).Code == ErrorCode.Unauthenticated, "a used refresh token: UNAUTHENTICATED");
            check.True(!Server(servers, 0).SentAny(f => f.MsgId == LoginReq.MessageId && f.Seq > login.Seq), "and no login after it");
            client.Close();
        }

        private static void DefaultPorts(Check check)
        {
            check.Equal(7001, new ClientOptions().Port, "TCP");
            check.Equal(7002, new ClientOptions { Transport = Transport.WebSocket }.Port, "WebSocket");
            check.Equal(7443, new ClientOptions { UseTls = true }.Port, "TCP over TLS");
            check.Equal(7444, new ClientOptions { Transport = Transport.WebSocket, UseTls = true }.Port, "WebSocket over TLS");
            check.Equal(9000, new ClientOptions { Transport = Transport.WebSocket, Port = 9000 }.Port, "a port set");
        }
    }
}
