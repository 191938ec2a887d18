using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Demo;

namespace Moonforge.Tests
{
    /// <summary>
    /// The demo scenario against a real `moonforge run`, over TCP, WebSocket or KCP: guest login,
    /// chat, arena, state pushes, a dropped connection resumed without losing a push, application and
    /// framework errors, timeout and cancellation, heartbeat, a duplicate-login kick and a resume that
    /// fails. A main loop plays Unity's part: it pumps a SynchronizationContext and calls Update, and
    /// every callback is checked to run on it.
    /// </summary>
    internal static class EndToEndTests
    {
        internal static int Run(string host, params KeyValuePair<Transport, int>[] targets)
        {
            var check = new Check();
            foreach (var target in targets)
            {
                Transport t = target.Key;
                var loop = new MainLoop();
                var scenario = new Scenario(check, loop, host, target.Value, t);
                try
                {
                    loop.Run(scenario.Play, TimeSpan.FromSeconds(40));
                }
                catch (Exception e)
                {
                    check.Fail(t + ": scenario stopped: " + e);
                }
                finally
                {
                    scenario.CloseAll();
                }
                check.Equal(0, loop.WrongThread, t + ": callbacks that ran off the main loop's thread");
            }
            return check.Finish("e2e");
        }

        /// <summary>Single-threaded SynchronizationContext plus the clients' Update: a game's main loop.</summary>
        private sealed class MainLoop : SynchronizationContext
        {
            private readonly ConcurrentQueue<KeyValuePair<SendOrPostCallback, object>> posted = new ConcurrentQueue<KeyValuePair<SendOrPostCallback, object>>();
            private readonly List<MoonforgeClient> clients = new List<MoonforgeClient>();
            private int mainThread;

            internal int WrongThread { get; private set; }

            internal void Add(MoonforgeClient c)
            {
                clients.Add(c);
            }

            internal void OnMainThread()
            {
                if (Thread.CurrentThread.ManagedThreadId != mainThread) WrongThread++;
            }

            public override void Post(SendOrPostCallback d, object state)
            {
                posted.Enqueue(new KeyValuePair<SendOrPostCallback, object>(d, state));
            }

            public override void Send(SendOrPostCallback d, object state)
            {
                throw new NotSupportedException("Send on the main loop");
            }

            internal void Run(Func<Task> body, TimeSpan limit)
            {
                mainThread = Thread.CurrentThread.ManagedThreadId;
                SynchronizationContext old = Current;
                SetSynchronizationContext(this);
                try
                {
                    Task task = body();
                    var sw = Stopwatch.StartNew();
                    while (!task.IsCompleted)
                    {
                        if (sw.Elapsed > limit) throw new TimeoutException("scenario still running after " + limit);
                        KeyValuePair<SendOrPostCallback, object> item;
                        while (posted.TryDequeue(out item)) item.Key(item.Value);
                        foreach (var c in clients.ToArray()) c.Update();
                        Thread.Sleep(1);
                    }
                    task.GetAwaiter().GetResult();
                }
                finally
                {
                    SetSynchronizationContext(old);
                }
            }
        }

        private sealed class Scenario
        {
            private readonly Check check;
            private readonly MainLoop loop;
            private readonly string host;
            private readonly int port;
            private readonly Transport transport;
            private readonly string tag;
            private readonly List<MoonforgeClient> all = new List<MoonforgeClient>();

            internal Scenario(Check check, MainLoop loop, string host, int port, Transport transport)
            {
                this.check = check;
                this.loop = loop;
                this.host = host;
                this.port = port;
                this.transport = transport;
                tag = transport == Transport.Tcp ? "tcp" : transport == Transport.WebSocket ? "ws" : "kcp";
            }

            internal void CloseAll()
            {
                foreach (var c in all) c.Close();
            }

            private MoonforgeClient NewClient(TimeSpan reconnectDelay, List<KeyValuePair<ClientEvent, EventInfo>> events)
            {
                var c = new MoonforgeClient(new ClientOptions
                {
                    Host = host,
                    Port = port,
                    Transport = transport,
                    HeartbeatInterval = TimeSpan.FromSeconds(1),
                    RequestTimeout = TimeSpan.FromSeconds(10),
                    ReconnectDelay = reconnectDelay,
                    Log = s => Console.WriteLine("  [" + tag + "] " + s),
                });
                c.EventRaised += (ev, info) =>
                {
                    loop.OnMainThread();
                    events.Add(new KeyValuePair<ClientEvent, EventInfo>(ev, info));
                };
                all.Add(c);
                loop.Add(c);
                return c;
            }

            private void True(bool ok, string what)
            {
                check.True(ok, tag + ": " + what);
            }

            private async Task<bool> Until(Func<bool> cond, string what, double seconds = 10)
            {
                var sw = Stopwatch.StartNew();
                while (!cond())
                {
                    if (sw.Elapsed.TotalSeconds > seconds)
                    {
                        True(false, "waited " + seconds + " s for " + what);
                        return false;
                    }
                    await Task.Delay(10);
                }
                True(true, what);
                return true;
            }

            private async Task<MoonforgeException> Fails(Task t, string what)
            {
                try
                {
                    await t;
                    True(false, what + ": succeeded, want an error");
                }
                catch (MoonforgeException e)
                {
                    loop.OnMainThread();
                    return e;
                }
                catch (Exception e)
                {
                    True(false, what + ": threw " + e.GetType().Name + " " + e.Message + ", want MoonforgeException");
                }
                return new MoonforgeException(0, "none");
            }

            private static bool Has(List<KeyValuePair<ClientEvent, EventInfo>> events, ClientEvent ev, Func<EventInfo, bool> match = null)
            {
                return events.Exists(e => e.Key == ev && (match == null || match(e.Value)));
            }

            internal async Task Play()
            {
                string device = "cs-" + tag + "-" + Guid.NewGuid().ToString("N").Substring(0, 10);
                var events = new List<KeyValuePair<ClientEvent, EventInfo>>();
                var seqs = new List<uint>();
                var chats = new List<ChatMessage>();
                ArenaState lastState = null;
                int states = 0;
                var client = NewClient(TimeSpan.FromMilliseconds(100), events);
                client.On<ArenaState>((m, seq) =>
                {
                    loop.OnMainThread();
                    seqs.Add(seq);
                    lastState = m;
                    states++;
                });
                client.On<ChatMessage>((m, seq) =>
                {
                    loop.OnMainThread();
                    seqs.Add(seq);
                    chats.Add(m);
                });
                client.On<ArenaEvent>((m, seq) => seqs.Add(seq));

                await client.ConnectAsync();
                await Until(() => Has(events, ClientEvent.Connected), "Connected event");

                LoginAck login = await client.LoginGuestAsync(device);
                loop.OnMainThread();
                True(login.PlayerId != "" && login.Token != "" && client.PlayerId == login.PlayerId && client.IsLoggedIn, "guest login " + login);

                ChatHistoryAck history = await client.ChatHistoryAsync(new ChatHistoryReq { Limit = 5 });
                True(history.Messages.Count <= 5, "chat history of at most 5");
                string text = "hello from C# over " + tag;
                ChatSendAck sent = await client.ChatSendAsync(new ChatSendReq { Text = text });
                True(sent.Index > 0, "chat send index " + sent.Index);
                await Until(() => chats.Exists(c => c.Text == text && c.From == login.PlayerId && c.Index == sent.Index), "our ChatMessage push");

                ArenaJoinAck join = await client.ArenaJoinAsync(new ArenaJoinReq());
                True(join.RoomId != "" && join.Players.Contains(login.PlayerId) && join.Pos != null, "arena join " + join);
                ArenaMoveAck moved = null;
                float dx = join.Pos.X < 50 ? 1 : -1;
                for (int i = 0; i < 10; i++) moved = await client.ArenaMoveAsync(new ArenaMoveReq { Dir = new Vec2 { X = dx } });
                True(moved != null && moved.Pos != null && moved.Pos.X == join.Pos.X + 10 * dx && moved.Pos.Y == join.Pos.Y, "10 arena moves from " + join.Pos + " to " + (moved != null ? moved.Pos : null));
                await Until(() => states >= 5, "5 ArenaState pushes");
                True(lastState.RoomId == join.RoomId && lastState.Players.Exists(p => p.Id == login.PlayerId && p.Hp > 0), "our player in the arena state " + lastState);

                // A network loss: the client reconnects, resumes, and the pushes go on without a gap.
                int disconnectsBefore = events.FindAll(e => e.Key == ClientEvent.Disconnected).Count;
                client.SimulateNetworkLoss();
                await Until(() => events.FindAll(e => e.Key == ClientEvent.Disconnected).Count > disconnectsBefore, "Disconnected event after the loss");
                True(Has(events, ClientEvent.Disconnected, e => e.WillReconnect), "Disconnected says it will reconnect");
                client.Send(new ChatSendReq { Text = "one-way while reconnecting " + tag });
                Task<StatsAck> duringResume = client.StatsAsync(new StatsReq());
                await Until(() => Has(events, ClientEvent.Resumed), "Resumed event");
                StatsAck stats = await duringResume;
                True(stats.Stats != null && stats.Stats.ChatsSent >= 1 && stats.Stats.ArenaJoins == 1, "request sent during the reconnect answered after it: " + stats);
                int atResume = states;
                await Until(() => states >= atResume + 10, "10 more ArenaState pushes after the resume");
                await Until(() => chats.Exists(c => c.Text == "one-way while reconnecting " + tag), "one-way message held during the reconnect delivered");
                bool contiguous = seqs.Count > 0 && seqs[0] == 1;
                for (int i = 1; i < seqs.Count && contiguous; i++) contiguous = seqs[i] == seqs[i - 1] + 1;
                True(contiguous, "push seqs 1.." + (seqs.Count > 0 ? seqs[seqs.Count - 1] : 0) + " each handled once, in order (" + seqs.Count + " pushes): " + string.Join(",", seqs.ConvertAll(s => s.ToString()).ToArray()));
                // LastPushSeq counts pushes received; those still queued for Update are not handled yet.
                await Until(() => client.QueuedWork == 0 && seqs.Count > 0 && client.LastPushSeq == seqs[seqs.Count - 1], "LastPushSeq is the last push handled once none waits");

                MoonforgeException e1 = await Fails(client.ChatSendAsync(new ChatSendReq { Text = "" }), "empty chat");
                True((uint)e1.Code == 1001 && e1.CodeName == "APP_1001" && e1.Message == "empty message" && e1.IsApplicationError, "application error 1001: " + e1);
                MoonforgeException e2 = await Fails(client.ChatSendAsync(new ChatSendReq { Text = new string('x', 201) }), "long chat");
                True((uint)e2.Code == 1002 && e2.CodeName == "APP_1002", "application error 1002: " + e2);

                ArenaLeaveAck left = await client.ArenaLeaveAsync(new ArenaLeaveReq());
                True(left.Moves == 10, "arena leave counts 10 moves: " + left);
                StatsAck saved = await client.StatsAsync(new StatsReq());
                True(saved.Stats.ArenaMoves == 10 && saved.Stats.ChatsSent >= 2, "statistics after leaving: " + saved);
                MoonforgeException e3 = await Fails(client.ArenaLeaveAsync(new ArenaLeaveReq()), "second leave");
                True(e3.Code == ErrorCode.BadRequest && e3.CodeName == "BAD_REQUEST" && !e3.IsApplicationError, "framework error BAD_REQUEST: " + e3);

                MoonforgeException e5 = await Fails(client.RequestAsync<ChatSendAck>(new StatsReq()), "wrong reply type");
                True(e5.Code == ErrorCode.DecodeFailed, "a reply of another type than asked: " + e5);
                Task<StatsAck> cancelled = client.StatsAsync(new StatsReq(), new CancellationToken(true));
                try
                {
                    await cancelled;
                    True(false, "request with a cancelled token completed");
                }
                catch (OperationCanceledException)
                {
                    True(cancelled.IsCanceled, "request with a cancelled token");
                }
                await Until(() => client.RoundTripTime.HasValue, "a Pong for the heartbeat Ping");

                // The same player logging in elsewhere kicks this connection; no reconnect follows.
                var otherEvents = new List<KeyValuePair<ClientEvent, EventInfo>>();
                var other = NewClient(TimeSpan.FromMilliseconds(100), otherEvents);
                await other.ConnectAsync();
                LoginAck again = await other.LoginGuestAsync(device);
                True(again.PlayerId == login.PlayerId && again.SessionId != login.SessionId, "second login of the same guest");
                await Until(() => Has(events, ClientEvent.Kicked, e => e.Code == ErrorCode.KickedDuplicateLogin), "Kicked KICKED_DUPLICATE_LOGIN");
                await Until(() => Has(events, ClientEvent.Disconnected, e => e.Code == ErrorCode.KickedDuplicateLogin && !e.WillReconnect), "Disconnected without reconnect after the kick");
                MoonforgeException e6 = await Fails(client.StatsAsync(new StatsReq()), "request after the kick");
                True(e6.Code == ErrorCode.Unavailable, "request without a connection: " + e6);

                // A session ended while its client was away cannot be resumed: LoginRequired, then a new login.
                string device3 = device + "-3";
                var lostEvents = new List<KeyValuePair<ClientEvent, EventInfo>>();
                var lost = NewClient(TimeSpan.FromSeconds(2), lostEvents);
                await lost.ConnectAsync();
                await lost.LoginGuestAsync(device3);
                lost.SimulateNetworkLoss();
                await Until(() => Has(lostEvents, ClientEvent.Disconnected), "Disconnected of the client to be replaced");
                Task<StatsAck> held = lost.StatsAsync(new StatsReq());
                var usurper = NewClient(TimeSpan.FromMilliseconds(100), new List<KeyValuePair<ClientEvent, EventInfo>>());
                await usurper.ConnectAsync();
                await usurper.LoginGuestAsync(device3);
                await Until(() => Has(lostEvents, ClientEvent.LoginRequired, e => e.Code == ErrorCode.ResumeFailed), "LoginRequired with RESUME_FAILED");
                MoonforgeException e7 = await Fails(held, "request held for a resume that failed");
                True(e7.Code == ErrorCode.ResumeFailed, "held request fails with RESUME_FAILED: " + e7);
                True(!lost.IsLoggedIn && lost.IsConnected, "after LoginRequired: connected, no session");
                LoginAck relogin = await lost.LoginGuestAsync(device3);
                True(relogin.PlayerId != "" && lost.IsLoggedIn, "login again after LoginRequired");
                StatsAck after = await lost.StatsAsync(new StatsReq());
                True(after.Stats != null, "requests work after the new login");

                // An app restart: a new client restores the session from the refresh token kept.
                string kept = lost.RefreshToken;
                True(!string.IsNullOrEmpty(kept), "LoginAck gave a refresh token");
                var restarted = NewClient(TimeSpan.FromMilliseconds(100), new List<KeyValuePair<ClientEvent, EventInfo>>());
                await restarted.ConnectAsync();
                LoginAck restored = await restarted.RestoreSessionAsync(kept);
                loop.OnMainThread();
                True(restored.PlayerId == relogin.PlayerId && restarted.IsLoggedIn && restarted.RefreshToken != kept, "session restored from the refresh token: " + restored);
                StatsAck restoredStats = await restarted.StatsAsync(new StatsReq());
                True(restoredStats.Stats != null, "requests work in the restored session");
                var second = NewClient(TimeSpan.FromMilliseconds(100), new List<KeyValuePair<ClientEvent, EventInfo>>());
                await second.ConnectAsync();
                MoonforgeException e8 = await Fails(second.RestoreSessionAsync(kept), "a refresh token used twice");
                True(e8.Code == ErrorCode.Unauthenticated, "a used refresh token is refused: " + e8);
            }
        }
    }
}
