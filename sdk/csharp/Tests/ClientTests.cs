using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Demo;

namespace Moonforge.Tests
{
    /// <summary>
    /// The client against a scripted server (a transport the test drives): results only inside Update,
    /// timeouts, cancellation, replays dropped after a resume, requests held until the resume, Kick, heartbeat and its
    /// silence detection, Close. No network and no server needed.
    /// </summary>
    internal static partial class ClientTests
    {
        internal static int Run()
        {
            var check = new Check();
            foreach (var test in new Action<Check>[] { ResultsOnlyInUpdate, ResumeAfterLoss, SilentServer, ConnectFailure, CancelWhileStarting, ThrowingLog, CloseCompletesAtOnce, LossCompletesAtOnce, HeartbeatNeverLeaks, BoundedUpdate, SimulatedLossAtOnce, NamedEvents, CatchAllPushes, RestoreSession, DefaultPorts, Endpoints })
            {
                try
                {
                    test(check);
                }
                catch (Exception e)
                {
                    check.Fail(test.Method.Name + ": " + e);
                }
            }
            return check.Finish("client");
        }

        private static ClientOptions Options(List<ScriptedServer> servers, bool autoPong, TimeSpan heartbeat)
        {
            return new ClientOptions
            {
                HeartbeatInterval = heartbeat,
                ReconnectDelay = TimeSpan.FromMilliseconds(10),
                Log = s => { },
                TransportFactory = o =>
                {
                    var s = new ScriptedServer(autoPong);
                    lock (servers) servers.Add(s);
                    return s;
                },
            };
        }

        // Pump calls Update until cond holds; false after 5 s.
        private static bool Pump(MoonforgeClient c, Func<bool> cond)
        {
            var sw = Stopwatch.StartNew();
            while (!cond())
            {
                if (sw.Elapsed > TimeSpan.FromSeconds(5)) return false;
                c.Update();
                Thread.Sleep(2);
            }
            return true;
        }

        private static ScriptedServer Server(List<ScriptedServer> servers, int i)
        {
            lock (servers) return servers.Count > i ? servers[i] : null;
        }

        private static void ResultsOnlyInUpdate(Check check)
        {
            var servers = new List<ScriptedServer>();
            var client = new MoonforgeClient(Options(servers, true, TimeSpan.Zero));
            var events = new List<ClientEvent>();
            client.EventRaised += (ev, info) => events.Add(ev);
            client.ConnectAsync().Wait();
            check.True(events.Count == 0, "no event before Update");
            client.Update();
            check.True(events.Count == 1 && events[0] == ClientEvent.Connected, "Connected raised by Update");

            Task<StatsAck> timedOut = client.RequestAsync<StatsAck>(new StatsReq(), TimeSpan.FromMilliseconds(50));
            Frame sent = Server(servers, 0).NextSent(f => f.MsgId == StatsReq.MessageId);
            check.True(sent.Seq == 1 && !sent.IsReply, "request goes out with seq 1");
            Thread.Sleep(200);
            check.True(!timedOut.IsCompleted, "a timed-out request completes only inside Update");
            client.Update();
            check.True(timedOut.IsFaulted && ((MoonforgeException)timedOut.Exception.InnerException).Code == ErrorCode.Timeout, "timeout fails with TIMEOUT");
            Server(servers, 0).Reply(sent, new StatsAck());
            Thread.Sleep(50);
            check.Equal(0, client.Update(), "a reply after the timeout is dropped");

            Task<StatsAck> answered = client.RequestAsync<StatsAck>(new StatsReq());
            sent = Server(servers, 0).NextSent(f => f.MsgId == StatsReq.MessageId);
            Server(servers, 0).Reply(sent, new StatsAck { Stats = new PlayerStats { ChatsSent = 7 } });
            check.True(Pump(client, () => answered.IsCompleted) && answered.Result.Stats.ChatsSent == 7, "reply decoded and matched by seq");

            var cts = new CancellationTokenSource();
            Task<StatsAck> cancelled = client.StatsAsync(new StatsReq(), cts.Token);
            sent = Server(servers, 0).NextSent(f => f.MsgId == StatsReq.MessageId);
            cts.Cancel();
            check.True(!cancelled.IsCompleted, "a cancelled request completes only inside Update");
            client.Update();
            check.True(cancelled.IsCanceled, "cancelled after it was sent");
            Server(servers, 0).Reply(sent, new StatsAck());
            Thread.Sleep(50);
            check.Equal(0, client.Update(), "a reply after the cancellation is dropped");

            Task<StatsAck> waiting = client.RequestAsync<StatsAck>(new StatsReq(), Timeout.InfiniteTimeSpan);
            client.Close();
            client.Update();
            check.True(waiting.IsFaulted && ((MoonforgeException)waiting.Exception.InnerException).Code == ErrorCode.Unavailable, "Close fails waiting requests with UNAVAILABLE");
            check.True(events.Contains(ClientEvent.Disconnected), "Close raises Disconnected");
        }

        private static void ResumeAfterLoss(Check check)
        {
            var servers = new List<ScriptedServer>();
            var client = new MoonforgeClient(Options(servers, true, TimeSpan.FromMilliseconds(100)));
            var events = new List<KeyValuePair<ClientEvent, EventInfo>>();
            client.EventRaised += (ev, info) => events.Add(new KeyValuePair<ClientEvent, EventInfo>(ev, info));
            var seqs = new List<uint>();
            client.On<ChatMessage>((m, seq) => seqs.Add(seq));
            client.ConnectAsync().Wait();

            Task<LoginAck> login = client.LoginGuestAsync("device-7f3a9c21e5");
            ScriptedServer first = Server(servers, 0);
            Frame req = first.NextSent(f => f.MsgId == LoginReq.MessageId);
            check.Equal("0a05677565737412116465766963652d37663361396332316535", ConformanceTests.ToHex(req.Payload), "LoginReq payload of the worked_example_login_req vector");
            first.Reply(req, new LoginAck { PlayerId = "p1", Token = "t1", SessionId = "s1" });
            check.True(Pump(client, () => login.IsCompleted) && login.Result.Token == "t1" && client.Token == "t1", "login");
            for (uint s = 1; s <= 3; s++) first.Push(s, new ChatMessage { Index = s });
            check.True(Pump(client, () => seqs.Count == 3), "three pushes");
            Frame ping = first.NextSent(f => f.MsgId == Ping.MessageId && Proto.Decode<Ping>(f.Payload).AckPushSeq == 3);
            check.True(ping.Seq != 0, "heartbeat Ping acknowledges push 3");
            check.True(Pump(client, () => client.RoundTripTime.HasValue), "Pong measured");

            first.Abort();
            check.True(Pump(client, () => Server(servers, 1) != null), "reconnected on a new transport");
            ScriptedServer second = Server(servers, 1);
            Frame resume = second.NextSent(f => f.MsgId == ResumeReq.MessageId);
            var rr = Proto.Decode<ResumeReq>(resume.Payload);
            check.True(rr.Token == "t1" && rr.LastPushSeq == 3, "ResumeReq carries the token and last push seq: " + rr);
            Task<StatsAck> held = client.StatsAsync(new StatsReq());
            Thread.Sleep(50);
            check.True(!second.SentAny(f => f.MsgId == StatsReq.MessageId), "a request during the resume is held");
            second.Reply(resume, new ResumeAck { PlayerId = "p1", Replayed = 2, Token = "t2" });
            for (uint s = 2; s <= 5; s++) second.Push(s, new ChatMessage { Index = s });
            Frame stats = second.NextSent(f => f.MsgId == StatsReq.MessageId);
            second.ReplyError(stats, 1001, "nope");
            check.True(Pump(client, () => held.IsCompleted), "held request answered after the resume");
            var err = held.Exception != null ? held.Exception.InnerException as MoonforgeException : null;
            check.True(err != null && (uint)err.Code == 1001 && err.CodeName == "APP_1001" && err.Message == "nope", "Error reply becomes MoonforgeException 1001");
            check.True(Pump(client, () => seqs.Count >= 5), "pushes after the resume");
            check.Equal("1,2,3,4,5", string.Join(",", seqs.ConvertAll(s => s.ToString()).ToArray()), "replayed pushes handled once, in order");
            check.True(client.Token == "t2", "token from ResumeAck");
            check.True(events.Exists(e => e.Key == ClientEvent.Resumed && e.Value.Replayed == 2), "Resumed event with the replay count");

            second.Push(0, new Kick { Code = (uint)ErrorCode.KickedDuplicateLogin, Reason = "elsewhere" });
            check.True(Pump(client, () => events.Exists(e => e.Key == ClientEvent.Kicked && e.Value.Code == ErrorCode.KickedDuplicateLogin && e.Value.Reason == "elsewhere")), "Kicked event");
            check.Equal(5u, client.LastPushSeq, "Kick takes no push seq");
            second.Abort();
            check.True(Pump(client, () => events.Exists(e => e.Key == ClientEvent.Disconnected && !e.Value.WillReconnect)), "no reconnect after a duplicate-login kick");
            Thread.Sleep(100);
            check.True(Server(servers, 2) == null, "no new transport after the kick");
            client.Close();
        }

        private static void SilentServer(Check check)
        {
            var servers = new List<ScriptedServer>();
            var client = new MoonforgeClient(Options(servers, false, TimeSpan.FromMilliseconds(50)));
            var events = new List<KeyValuePair<ClientEvent, EventInfo>>();
            client.EventRaised += (ev, info) => events.Add(new KeyValuePair<ClientEvent, EventInfo>(ev, info));
            client.ConnectAsync().Wait();
            check.True(Pump(client, () => events.Exists(e => e.Key == ClientEvent.Disconnected && e.Value.WillReconnect)), "a server silent for 3 heartbeat intervals counts as lost");
            check.True(Pump(client, () => Server(servers, 1) != null), "and the client reconnects");
            client.Close();
        }

        // Endpoints: ConnectAsync skips one that fails; each reconnect goes to the next, wrapping around.
        private static void Endpoints(Check check)
        {
            var tried = new List<string>();
            var servers = new List<ScriptedServer>();
            var options = Options(servers, true, TimeSpan.Zero);
            options.Endpoints = new[] { "dead:1", "dead:4", "a:2", "[::1]" };
            options.Port = 3;
            options.TransportFactory = o =>
            {
                var s = new ScriptedServer(true) { FailConnect = o.Host == "dead" };
                lock (servers)
                {
                    tried.Add(o.Host + ":" + o.Port);
                    if (!s.FailConnect) servers.Add(s);
                }
                return s;
            };
            var client = new MoonforgeClient(options);
            client.ConnectAsync().Wait();
            lock (servers) check.Equal("dead:1 dead:4 a:2", string.Join(" ", tried), "endpoints tried by ConnectAsync");
            Server(servers, 0).Abort();
            check.True(Pump(client, () => Server(servers, 1) != null), "reconnects after a loss");
            Server(servers, 1).Abort();
            check.True(Pump(client, () => Server(servers, 2) != null), "reconnects after a second loss");
            client.Close();
            lock (servers) check.Equal("dead:1 dead:4 a:2 ::1:3 dead:1 dead:4 a:2", string.Join(" ", tried), "endpoints tried in order, wrapping around");
            foreach (var bad in new[] { "host:0", "host:x", ":7001", "[::1", "[::1]x" })
            {
                try
                {
                    new MoonforgeClient(new ClientOptions { Endpoints = new[] { bad } });
                    check.Fail("endpoint " + bad + " accepted");
                }
                catch (ArgumentException)
                {
                }
            }
        }

        private static void ConnectFailure(Check check)
        {
            var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            listener.Start();
            int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            var client = new MoonforgeClient(new ClientOptions { Port = port, Log = s => { } });
            try
            {
                client.ConnectAsync().Wait();
                check.Fail("connected to a closed port");
            }
            catch (AggregateException e)
            {
                var me = e.InnerException as MoonforgeException;
                check.True(me != null && me.Code == ErrorCode.Unavailable, "connecting to a closed port fails with UNAVAILABLE: " + e.InnerException);
            }
            Task<StatsAck> t = client.StatsAsync(new StatsReq());
            client.Update();
            check.True(t.IsFaulted && ((MoonforgeException)t.Exception.InnerException).Code == ErrorCode.Unavailable, "a request without a connection fails with UNAVAILABLE");
        }

        /// <summary>A transport whose far end is the test: it records what the client sends and delivers
        /// the frames the test queues; with autoPong it answers Ping.</summary>
        private sealed class ScriptedServer : ITransport
        {
            private readonly bool autoPong;
            private readonly ConcurrentQueue<Frame> inbound = new ConcurrentQueue<Frame>();
            private readonly SemaphoreSlim arrived = new SemaphoreSlim(0);
            private readonly List<Frame> sent = new List<Frame>();
            private readonly HashSet<int> taken = new HashSet<int>();
            private volatile bool aborted;

            internal ScriptedServer(bool autoPong)
            {
                this.autoPong = autoPong;
            }

            // FailConnect makes ConnectAsync fail; DieAtOnce makes the connection fail on its first read.
            internal bool FailConnect;
            internal bool DieAtOnce;

            public Task ConnectAsync(CancellationToken cancellationToken)
            {
                if (FailConnect) throw new IOException("connection refused");
                return Task.FromResult(0);
            }

            public async Task<Frame> ReceiveAsync(CancellationToken cancellationToken)
            {
                if (DieAtOnce) throw new IOException("connection reset");
                while (true)
                {
                    await arrived.WaitAsync().ConfigureAwait(false);
                    if (aborted) throw new IOException("aborted");
                    Frame f;
                    if (inbound.TryDequeue(out f)) return f;
                }
            }

            public Task SendAsync(IList<Frame> frames, CancellationToken cancellationToken)
            {
                if (aborted) throw new IOException("aborted");
                lock (sent)
                {
                    sent.AddRange(frames);
                    Monitor.PulseAll(sent);
                }
                foreach (var f in frames)
                {
                    if (autoPong && f.MsgId == Ping.MessageId && f.Seq != 0)
                    {
                        Reply(f, new Pong { ClientTimeMs = Proto.Decode<Ping>(f.Payload).ClientTimeMs });
                    }
                }
                return Task.FromResult(0);
            }

            public void Abort()
            {
                aborted = true;
                arrived.Release();
            }

            public void Dispose()
            {
                Abort();
            }

            internal void Reply(Frame request, IMessage reply)
            {
                MessageInfo info = MessageTable.CreateDefault().ByType(reply.GetType());
                Deliver(new Frame(info.Id, Frame.FlagReply, request.Seq, Proto.Encode(reply)));
            }

            internal void ReplyError(Frame request, uint code, string message)
            {
                Deliver(new Frame(Error.MessageId, Frame.FlagReply, request.Seq, Proto.Encode(new Error { Code = code, Message = message })));
            }

            internal void Push(uint seq, IMessage msg)
            {
                MessageInfo info = MessageTable.CreateDefault().ByType(msg.GetType());
                Deliver(new Frame(info.Id, 0, seq, Proto.Encode(msg)));
            }

            // NextSent waits up to 5 s for a sent frame that matches and that it has not returned before.
            internal Frame NextSent(Func<Frame, bool> match)
            {
                var sw = Stopwatch.StartNew();
                lock (sent)
                {
                    while (true)
                    {
                        for (int i = 0; i < sent.Count; i++)
                        {
                            if (!taken.Contains(i) && match(sent[i]))
                            {
                                taken.Add(i);
                                return sent[i];
                            }
                        }
                        if (sw.Elapsed > TimeSpan.FromSeconds(5)) throw new TimeoutException("the client sent no such frame");
                        Monitor.Wait(sent, 50);
                    }
                }
            }

            internal bool SentAny(Func<Frame, bool> match)
            {
                lock (sent) return sent.Exists(f => match(f));
            }

            private void Deliver(Frame f)
            {
                inbound.Enqueue(f);
                arrived.Release();
            }
        }
    }
}
