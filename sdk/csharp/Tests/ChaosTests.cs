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
    /// The demo game played through a relay that breaks the connection at random (sdk/internal/relay,
    /// driven by chaos_test.go) until the stop file appears. A 60 Hz-style main loop without a
    /// SynchronizationContext calls Update and starts requests (some with tokens that fire at once);
    /// it logs in again when the session is lost. Checked: every request ends exactly once, with a
    /// reply or a MoonforgeException or a cancellation; every push of a session is handled once, in
    /// order, on the main thread; nothing escapes Update; after Close every task is complete at once
    /// and nothing more runs.
    /// </summary>
    internal static class ChaosTests
    {
        internal static int Run(string host, int port, string stopFile)
        {
            var check = new Check();
            try
            {
                new Game(check, host, port).Play(stopFile);
            }
            catch (Exception e)
            {
                check.Fail("chaos game stopped: " + e);
            }
            return check.Finish("chaos");
        }

        /// <summary>One request and how many times its task ended.</summary>
        private sealed class Req
        {
            internal string Name;
            internal Task Task;
            internal int Ends;
        }

        private sealed class Game
        {
            private readonly Check check;
            private readonly MoonforgeClient client;
            private readonly List<Req> reqs = new List<Req>();
            private readonly ConcurrentQueue<string> problems = new ConcurrentQueue<string>();
            private readonly Random rnd = new Random(18);
            private readonly string device = "chaos-cs-" + Guid.NewGuid().ToString("N").Substring(0, 8);
            private readonly int mainThread = Thread.CurrentThread.ManagedThreadId;
            private uint lastSeq;
            private int pushes, resumes, disconnects, logins, ok, failed, cancelled, afterClose;
            private bool closed;
            private Req login, join;
            private bool needLogin = true, joined;

            internal Game(Check check, string host, int port)
            {
                this.check = check;
                client = new MoonforgeClient(new ClientOptions
                {
                    Host = host,
                    Port = port,
                    HeartbeatInterval = TimeSpan.FromMilliseconds(300),
                    RequestTimeout = TimeSpan.FromSeconds(2),
                    ConnectTimeout = TimeSpan.FromSeconds(2),
                    ReconnectDelay = TimeSpan.FromMilliseconds(20),
                    ReconnectMaxDelay = TimeSpan.FromMilliseconds(200),
                    Log = line =>
                    {
                        if (line.Contains("failed:") && line.Contains("handler")) problems.Enqueue("a handler threw: " + line);
                    },
                });
                client.On<ArenaState>((m, seq) => Push(seq));
                client.On<ChatMessage>((m, seq) => Push(seq));
                client.On<ArenaEvent>((m, seq) => Push(seq));
                client.EventRaised += (ev, info) =>
                {
                    OnMain("event " + ev);
                    if (closed) afterClose++;
                    if (ev == ClientEvent.Resumed) resumes++;
                    if (ev == ClientEvent.Disconnected) disconnects++;
                    if (ev == ClientEvent.LoginRequired)
                    {
                        lastSeq = 0;
                        needLogin = true;
                        joined = false;
                    }
                };
            }

            private void OnMain(string what)
            {
                if (Thread.CurrentThread.ManagedThreadId != mainThread) problems.Enqueue(what + " ran off the main thread");
            }

            private void Push(uint seq)
            {
                OnMain("push handler");
                if (closed) afterClose++;
                pushes++;
                if (seq == 0) return;
                if (seq != lastSeq + 1) problems.Enqueue("push " + seq + " after " + lastSeq);
                lastSeq = seq;
            }

            private Req Start(string name, Task task)
            {
                var r = new Req { Name = name, Task = task };
                reqs.Add(r);
                task.ContinueWith(t =>
                {
                    Interlocked.Increment(ref r.Ends);
                    if (t.IsCanceled) Interlocked.Increment(ref cancelled);
                    else if (t.IsFaulted)
                    {
                        Interlocked.Increment(ref failed);
                        if (!(t.Exception.InnerException is MoonforgeException)) problems.Enqueue(name + " failed with " + t.Exception.InnerException);
                    }
                    else Interlocked.Increment(ref ok);
                }, TaskContinuationOptions.ExecuteSynchronously);
                return r;
            }

            private static bool Succeeded(Req r)
            {
                return r.Task.Status == TaskStatus.RanToCompletion;
            }

            // Step starts what the game wants next: a login, the arena, or a random request.
            private void Step(int outstanding)
            {
                if (login != null && login.Task.IsCompleted)
                {
                    if (Succeeded(login))
                    {
                        needLogin = false;
                        logins++;
                    }
                    login = null;
                }
                if (needLogin)
                {
                    if (login == null) login = Start("login", client.LoginGuestAsync(device));
                    return;
                }
                if (join != null && join.Task.IsCompleted)
                {
                    var e = join.Task.IsFaulted ? join.Task.Exception.InnerException as MoonforgeException : null;
                    joined = Succeeded(join) || (e != null && e.Code == ErrorCode.BadRequest);
                    join = null;
                }
                if (!joined)
                {
                    if (join == null) join = Start("join", client.ArenaJoinAsync(new ArenaJoinReq()));
                    return;
                }
                if (outstanding >= 8) return;
                var cts = new CancellationTokenSource();
                switch (rnd.Next(10))
                {
                    case 0:
                        cts.CancelAfter(rnd.Next(3));
                        Start("stats (cancelled)", client.StatsAsync(new StatsReq(), cts.Token));
                        break;
                    case 1:
                        Start("chat", client.ChatSendAsync(new ChatSendReq { Text = "chaos " + reqs.Count }));
                        break;
                    case 2:
                        Start("history", client.ChatHistoryAsync(new ChatHistoryReq { Limit = 3 }));
                        break;
                    case 3:
                        Start("stats", client.StatsAsync(new StatsReq()));
                        break;
                    default:
                        Start("move", client.ArenaMoveAsync(new ArenaMoveReq { Dir = new Vec2 { X = rnd.Next(3) - 1, Y = rnd.Next(3) - 1 } }));
                        break;
                }
            }

            private int Outstanding()
            {
                int n = 0;
                foreach (var r in reqs)
                {
                    if (!r.Task.IsCompleted) n++;
                }
                return n;
            }

            private void Frame()
            {
                try
                {
                    client.Update();
                }
                catch (Exception e)
                {
                    problems.Enqueue("Update threw " + e);
                }
                Thread.Sleep(2);
            }

            internal void Play(string stopFile)
            {
                while (true)
                {
                    try
                    {
                        client.ConnectAsync().Wait();
                        break;
                    }
                    catch (AggregateException)
                    {
                        Thread.Sleep(50);
                    }
                }
                var sw = Stopwatch.StartNew();
                long frames = 0;
                while (!File.Exists(stopFile))
                {
                    if (sw.Elapsed > TimeSpan.FromMinutes(3)) throw new TimeoutException("no stop file after 3 minutes");
                    Frame();
                    if (frames++ % 3 == 0) Step(Outstanding());
                }
                // Settle: no new request; the ones out end by reply, error or timeout.
                sw.Restart();
                while (Outstanding() > 0 && sw.Elapsed < TimeSpan.FromSeconds(20)) Frame();
                check.Equal(0, Outstanding(), "requests still pending 20 s after the faults stopped");
                for (int i = 0; i < 50; i++) Frame();
                client.Close();
                closed = true;
                int incomplete = 0;
                foreach (var r in reqs)
                {
                    if (!r.Task.IsCompleted) incomplete++;
                }
                check.Equal(0, incomplete, "tasks not complete when Close returned");
                Thread.Sleep(50);
                for (int i = 0; i < 5; i++) Frame();
                check.Equal(0, client.QueuedWork, "work queued after Close and an Update");
                check.True(afterClose <= 1, "handlers or events after Close (the Disconnected of Close aside): " + afterClose);
                int wrongEnds = 0;
                foreach (var r in reqs)
                {
                    if (Volatile.Read(ref r.Ends) != 1) wrongEnds++;
                }
                check.Equal(0, wrongEnds, "requests that did not end exactly once");
                string p;
                int shown = 0;
                while (problems.TryDequeue(out p))
                {
                    if (shown++ < 20) check.Fail(p);
                }
                check.Equal(0, shown, "problems");
                Console.WriteLine("chaos stats: requests " + reqs.Count + " (ok " + ok + ", failed " + failed + ", cancelled " + cancelled + "), logins " + logins +
                    ", pushes " + pushes + ", disconnects " + disconnects + ", resumes " + resumes);
                check.True(ok >= 50 && pushes >= 200 && resumes >= 10, "the game made progress between the faults");
            }
        }
    }
}
