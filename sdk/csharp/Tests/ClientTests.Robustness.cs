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
    }
}
