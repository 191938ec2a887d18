using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace Moonforge
{
    // The network side of MoonforgeClient: connections with their reader, writer and heartbeat, the
    // requests in flight, reconnect and resume. It runs on thread-pool threads and hands everything
    // the game sees to the dispatch queue.
    public sealed partial class MoonforgeClient
    {
        private async Task<Connection> OpenAsync(CancellationToken cancellationToken)
        {
            ITransport t = options.TransportFactory != null ? options.TransportFactory(options) : CreateTransport();
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.Token))
            {
                cts.CancelAfter(options.ConnectTimeout);
                try
                {
                    await t.ConnectAsync(cts.Token).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    t.Dispose();
                    if (cancellationToken.IsCancellationRequested) throw new OperationCanceledException(cancellationToken);
                    string why = cts.IsCancellationRequested && !lifetime.IsCancellationRequested ? "timed out" : e.Message;
                    throw new MoonforgeException(ErrorCode.Unavailable, "cannot connect to " + options.Host + ":" + options.Port + ": " + why, 0, e);
                }
            }
            return new Connection(t);
        }

        private ITransport CreateTransport()
        {
            if (options.Transport == Transport.WebSocket)
            {
                var uri = new UriBuilder(options.UseTls ? "wss" : "ws", options.Host, options.Port, options.WebSocketPath).Uri;
                return new WebSocketTransport(uri, options.MaxFrameSize);
            }
            if (options.Transport == Transport.Kcp)
            {
                return new KcpTransport(options.Host, options.Port, options.MaxFrameSize);
            }
            return new TcpTransport(options.Host, options.Port, options.UseTls, options.MaxFrameSize);
        }

        // Attach makes c the current connection and starts its loops. After a reconnect with a session
        // it sends ResumeReq and holds the game's frames until the resume is answered.
        private void Attach(Connection c)
        {
            bool resume;
            lock (gate)
            {
                if (closed)
                {
                    c.Shutdown();
                    throw new ObjectDisposedException("MoonforgeClient");
                }
                conn = c;
                kickCode = 0;
                reconnecting = false;
                resume = token != null;
                resuming = resume;
                if (!resume) FlushHeld(c);
            }
            RaiseEvent(ClientEvent.Connected, new EventInfo(0, "", 0, false));
            Task.Run(() => ReadLoop(c));
            Task.Run(() => WriteLoop(c));
            if (options.HeartbeatInterval > TimeSpan.Zero)
            {
                c.Heartbeat = new Timer(_ => Beat(c), null, options.HeartbeatInterval, options.HeartbeatInterval);
            }
            if (resume) Resume(c);
        }

        // FlushHeld moves the frames held during a reconnect to c, skipping requests that ended meanwhile.
        // Called under gate.
        private void FlushHeld(Connection c)
        {
            foreach (var f in held)
            {
                Pending p;
                if (f.Seq != 0)
                {
                    if (!pending.TryGetValue(f.Seq, out p)) continue;
                    p.Conn = c;
                }
                c.Enqueue(f);
            }
            held.Clear();
        }

        // TakeHeld removes the requests held for a reconnect that will not come. Called under gate; the
        // caller fails the returned requests outside it.
        private List<Pending> TakeHeld()
        {
            var failed = new List<Pending>();
            foreach (var f in held)
            {
                Pending p;
                if (f.Seq != 0 && pending.TryGetValue(f.Seq, out p))
                {
                    pending.Remove(f.Seq);
                    failed.Add(p);
                }
            }
            held.Clear();
            return failed;
        }

        private void Resume(Connection c)
        {
            ResumeReq req;
            lock (gate) req = new ResumeReq { Token = token ?? "", LastPushSeq = lastPushSeq };
            var p = new Pending((msg, err) => Resumed(c, msg as ResumeAck, err), null);
            StartRequest(ResumeReq.MessageId, Proto.Encode(req), options.RequestTimeout, CancellationToken.None, p, c);
        }

        // Resumed handles the answer to ResumeReq, on a network thread.
        private void Resumed(Connection c, ResumeAck ack, Exception err)
        {
            var me = err as MoonforgeException;
            if (ack == null && (me == null || me.Code == ErrorCode.Unavailable || me.Code == ErrorCode.Timeout || me.Code == ErrorCode.Internal))
            {
                // The connection failed or the server could not answer now: try again on a new one.
                log("resume not answered: " + (err != null ? err.Message : "unexpected reply"));
                c.Transport.Abort();
                return;
            }
            List<Pending> failed = null;
            lock (gate)
            {
                if (conn != c) return;
                resuming = false;
                if (ack != null)
                {
                    FlushHeld(c);
                }
                else
                {
                    token = null;
                    failed = TakeHeld();
                }
            }
            if (ack != null)
            {
                RaiseEvent(ClientEvent.Resumed, new EventInfo(0, "", ack.Replayed, false));
                return;
            }
            foreach (var p in failed) p.Fail(new MoonforgeException(ErrorCode.ResumeFailed, "the session could not be resumed: " + me.Message));
            RaiseEvent(ClientEvent.LoginRequired, new EventInfo(me.Code, me.Message, 0, false));
        }

        // StartRequest registers p under a new seq, arms its timeout and cancellation, and queues the
        // frame: on target (internal requests, which go out even while resuming), else on the current
        // connection, or held while a reconnect or resume is under way. Otherwise p fails at once.
        private void StartRequest(ushort msgId, byte[] payload, TimeSpan timeout, CancellationToken cancellationToken, Pending p, Connection target)
        {
            MoonforgeException refused = null;
            if (payload.Length + Frame.HeaderSize > options.MaxFrameSize)
            {
                refused = new MoonforgeException(ErrorCode.FrameTooLarge, "request of " + payload.Length + " bytes exceeds the maximum frame size " + options.MaxFrameSize);
            }
            else if (timeout <= TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
            {
                refused = new MoonforgeException(ErrorCode.Timeout, "request timeout " + timeout + " is not positive");
            }
            else
            {
                lock (gate)
                {
                    if (closed)
                    {
                        refused = new MoonforgeException(ErrorCode.Unavailable, "client closed");
                    }
                    else if (target != null ? target.Dead : conn == null && !reconnecting && !resuming)
                    {
                        refused = new MoonforgeException(ErrorCode.Unavailable, "not connected");
                    }
                    else
                    {
                        do
                        {
                            nextSeq++;
                        }
                        while (nextSeq == 0 || pending.ContainsKey(nextSeq));
                        uint seq = nextSeq;
                        pending[seq] = p;
                        p.Arm(this, seq, timeout, cancellationToken);
                        var f = new Frame(msgId, 0, seq, payload);
                        if (target != null)
                        {
                            p.Conn = target;
                            target.Enqueue(f);
                        }
                        else if (conn != null && !resuming)
                        {
                            p.Conn = conn;
                            conn.Enqueue(f);
                        }
                        else
                        {
                            held.Add(f);
                        }
                    }
                }
            }
            if (refused != null) p.Fail(refused);
        }

        private Pending TakePending(uint seq)
        {
            lock (gate)
            {
                Pending p;
                if (!pending.TryGetValue(seq, out p)) return null;
                pending.Remove(seq);
                return p;
            }
        }

        private async Task ReadLoop(Connection c)
        {
            try
            {
                while (true)
                {
                    Frame f = await c.Transport.ReceiveAsync(CancellationToken.None).ConfigureAwait(false);
                    c.Touch();
                    OnFrame(f);
                }
            }
            catch (Exception e)
            {
                Lost(c, e);
            }
        }

        private async Task WriteLoop(Connection c)
        {
            var batch = new List<Frame>();
            try
            {
                while (true)
                {
                    await c.Signal.WaitAsync().ConfigureAwait(false);
                    lock (gate)
                    {
                        if (c.Dead) return;
                        c.TakeOutbox(batch);
                    }
                    if (batch.Count == 0) continue;
                    await c.Transport.SendAsync(batch, CancellationToken.None).ConfigureAwait(false);
                    batch.Clear();
                }
            }
            catch (Exception e)
            {
                Lost(c, e);
            }
        }

        // OnFrame handles one frame from the server, on the reader's thread.
        private void OnFrame(Frame f)
        {
            if (f.IsReply)
            {
                IMessage msg;
                Exception err;
                DecodeReply(f, out msg, out err);
                var login = msg as LoginAck;
                var resumed = msg as ResumeAck;
                if (login != null || resumed != null)
                {
                    lock (gate)
                    {
                        if (login != null)
                        {
                            token = login.Token;
                            playerId = login.PlayerId;
                            sessionId = login.SessionId;
                            lastPushSeq = 0;
                        }
                        else
                        {
                            token = resumed.Token;
                        }
                    }
                }
                Pending p = TakePending(f.Seq);
                if (p != null) p.Complete(msg, err);
                return;
            }
            if (f.MsgId == Kick.MessageId)
            {
                var kick = new Kick();
                try
                {
                    Proto.Merge(kick, f.Payload, 0, f.Payload.Length);
                }
                catch (ProtoException e)
                {
                    log("undecodable Kick: " + e.Message);
                }
                lock (gate) kickCode = (ErrorCode)kick.Code;
                RaiseEvent(ClientEvent.Kicked, new EventInfo((ErrorCode)kick.Code, kick.Reason, 0, false));
                return;
            }
            if (f.Seq != 0)
            {
                lock (gate)
                {
                    if (f.Seq <= lastPushSeq) return; // replayed after a resume, and already queued
                    lastPushSeq = f.Seq;
                }
            }
            MessageInfo info = messages.ById(f.MsgId);
            if (info == null)
            {
                log("dropped push " + f.Seq + ": msg_id " + f.MsgId + " is not in the client's MessageTable");
                return;
            }
            IMessage push;
            try
            {
                push = info.Decode(f.Payload, 0, f.Payload.Length);
            }
            catch (ProtoException e)
            {
                log("dropped push " + f.Seq + ": undecodable " + info.FullName + ": " + e.Message);
                return;
            }
            ushort id = f.MsgId;
            uint seq = f.Seq;
            dispatch.Post(() => DispatchPush(id, push, seq));
        }

        private void DecodeReply(Frame f, out IMessage msg, out Exception err)
        {
            msg = null;
            err = null;
            MessageInfo info = messages.ById(f.MsgId);
            if (info == null)
            {
                err = new MoonforgeException(ErrorCode.UnknownMessage, "reply with msg_id " + f.MsgId + ", which is not in the client's MessageTable");
                return;
            }
            try
            {
                msg = info.Decode(f.Payload, 0, f.Payload.Length);
            }
            catch (ProtoException e)
            {
                err = new MoonforgeException(ErrorCode.DecodeFailed, "undecodable " + info.FullName + " reply: " + e.Message);
                return;
            }
            var error = msg as Error;
            if (error != null)
            {
                msg = null;
                err = new MoonforgeException((ErrorCode)error.Code, error.Message, error.RetryAfterMs);
            }
        }

        // Lost handles the end of connection c (from its reader, writer or heartbeat): requests sent on
        // it fail, Disconnected is raised, and the reconnect loop starts when it should.
        private void Lost(Connection c, Exception why)
        {
            var failed = new List<Pending>();
            bool reconnect;
            ErrorCode kick;
            lock (gate)
            {
                if (c.Dead) return;
                c.Dead = true;
                if (conn != c) return;
                conn = null;
                foreach (var kv in pending)
                {
                    if (kv.Value.Conn == c) failed.Add(kv.Value);
                }
                foreach (var p in failed) pending.Remove(p.Seq);
                kick = kickCode;
                resuming = false;
                reconnect = options.Reconnect && !closed && kick != ErrorCode.KickedDuplicateLogin && kick != ErrorCode.Unauthenticated;
                if (reconnect) reconnecting = true;
                else failed.AddRange(TakeHeld());
            }
            c.Shutdown();
            var err = new MoonforgeException(ErrorCode.Unavailable, "connection lost before the reply: " + why.Message, 0, why);
            foreach (var p in failed) p.Fail(err);
            RaiseEvent(ClientEvent.Disconnected, new EventInfo(kick, why.Message, 0, reconnect));
            if (reconnect) Task.Run(() => ReconnectLoop());
        }

        private async Task ReconnectLoop()
        {
            TimeSpan delay = options.ReconnectDelay;
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    await Task.Delay(delay, lifetime.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                Exception why;
                try
                {
                    Connection c = await OpenAsync(CancellationToken.None).ConfigureAwait(false);
                    Attach(c);
                    return;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (Exception e)
                {
                    why = e;
                }
                if (lifetime.IsCancellationRequested) return;
                log("reconnect attempt " + attempt + " failed: " + why.Message);
                if (options.ReconnectMaxAttempts > 0 && attempt >= options.ReconnectMaxAttempts)
                {
                    List<Pending> failed;
                    lock (gate)
                    {
                        reconnecting = false;
                        failed = TakeHeld();
                    }
                    var err = new MoonforgeException(ErrorCode.Unavailable, "gave up reconnecting after " + attempt + " attempts", 0, why);
                    foreach (var p in failed) p.Fail(err);
                    RaiseEvent(ClientEvent.Disconnected, new EventInfo(0, err.Message, 0, false));
                    return;
                }
                long next = Math.Min(delay.Ticks * 2, options.ReconnectMaxDelay.Ticks);
                delay = TimeSpan.FromTicks(Math.Max(next, TimeSpan.TicksPerMillisecond));
            }
        }

        // Beat runs on a timer thread every heartbeat interval: Ping with the push acknowledgement, and
        // the end of a connection that has been silent for 3 intervals.
        private void Beat(Connection c)
        {
            if (c.Dead) return;
            if (c.SilentFor > TimeSpan.FromTicks(options.HeartbeatInterval.Ticks * 3))
            {
                log("no frame from the server for 3 heartbeat intervals: reconnecting");
                c.Transport.Abort();
                return;
            }
            var ping = new Ping { ClientTimeMs = NowMs(), AckPushSeq = LastPushSeq };
            var p = new Pending((msg, err) =>
            {
                var pong = msg as Pong;
                if (pong != null) Interlocked.Exchange(ref roundTripTicks, Math.Max(0, NowMs() - pong.ClientTimeMs) * TimeSpan.TicksPerMillisecond);
            }, null);
            StartRequest(Ping.MessageId, Proto.Encode(ping), options.RequestTimeout, CancellationToken.None, p, c);
        }

        private static long NowMs()
        {
            return (DateTime.UtcNow.Ticks - 621355968000000000L) / TimeSpan.TicksPerMillisecond;
        }

        /// <summary>One transport and its outbox. Dead and the outbox are guarded by the client's gate.</summary>
        private sealed class Connection
        {
            private readonly List<Frame> outbox = new List<Frame>();
            private readonly Stopwatch sinceReceive = Stopwatch.StartNew();

            internal Connection(ITransport transport)
            {
                Transport = transport;
                Signal = new SemaphoreSlim(0);
            }

            internal ITransport Transport { get; private set; }

            internal SemaphoreSlim Signal { get; private set; }

            internal volatile bool Dead;

            internal Timer Heartbeat;

            internal TimeSpan SilentFor
            {
                get { lock (sinceReceive) return sinceReceive.Elapsed; }
            }

            internal void Touch()
            {
                lock (sinceReceive) sinceReceive.Restart();
            }

            // Enqueue queues f for the writer. Called under the client's gate.
            internal void Enqueue(Frame f)
            {
                outbox.Add(f);
                Signal.Release();
            }

            // TakeOutbox moves the queued frames to batch. Called under the client's gate.
            internal void TakeOutbox(List<Frame> batch)
            {
                batch.AddRange(outbox);
                outbox.Clear();
            }

            internal void Shutdown()
            {
                Dead = true;
                Signal.Release();
                Timer t = Heartbeat;
                if (t != null) t.Dispose();
                Transport.Dispose();
            }
        }

        /// <summary>A request waiting for its reply. Exactly one of reply, timeout, cancellation or
        /// failure ends it: whoever takes it out of the client's table.</summary>
        private sealed class Pending
        {
            private readonly Action<IMessage, Exception> done;
            private readonly Action cancelled;
            private CancellationTokenSource timer;
            private CancellationTokenRegistration registration;

            // done runs on a network thread with the reply or the error; cancelled (may be null) when
            // the caller's token fires.
            internal Pending(Action<IMessage, Exception> done, Action cancelled)
            {
                this.done = done;
                this.cancelled = cancelled;
            }

            internal uint Seq { get; private set; }

            // The connection the request went out on; null while held. Guarded by the client's gate.
            internal Connection Conn;

            internal void Arm(MoonforgeClient client, uint seq, TimeSpan timeout, CancellationToken cancellationToken)
            {
                Seq = seq;
                var t = new CancellationTokenSource();
                timer = t;
                t.Token.Register(() =>
                {
                    if (client.TakePending(seq) == this)
                    {
                        Fail(new MoonforgeException(ErrorCode.Timeout, "no reply within " + timeout.TotalSeconds + " s"));
                    }
                });
                if (cancellationToken.CanBeCanceled)
                {
                    registration = cancellationToken.Register(() =>
                    {
                        if (client.TakePending(seq) != this) return;
                        Release();
                        if (cancelled != null) cancelled();
                    });
                }
                if (timeout != Timeout.InfiniteTimeSpan && timeout.TotalMilliseconds <= int.MaxValue) t.CancelAfter(timeout);
            }

            internal void Complete(IMessage msg, Exception err)
            {
                Release();
                done(msg, err);
            }

            internal void Fail(Exception err)
            {
                Release();
                done(null, err);
            }

            private void Release()
            {
                registration.Dispose();
                CancellationTokenSource t = timer;
                if (t != null) t.Dispose();
            }
        }
    }
}
