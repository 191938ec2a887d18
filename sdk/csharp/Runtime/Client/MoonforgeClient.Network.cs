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
        // OpenAsync connects to endpoints[at], which becomes the current endpoint.
        private async Task<Connection> OpenAsync(int at, CancellationToken cancellationToken)
        {
            endpoint = at;
            ClientOptions o = options.At(endpoints[at].Key, endpoints[at].Value);
            ITransport t = options.TransportFactory != null ? options.TransportFactory(o) : CreateTransport(o);
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
                    throw new MoonforgeException(ErrorCode.Unavailable, "cannot connect to " + o.Host + ":" + o.Port + ": " + why, 0, e);
                }
            }
            return new Connection(t, this);
        }

        private static ITransport CreateTransport(ClientOptions options)
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
            return new TcpTransport(options.Host, options.Port, options.UseTls, options.MaxFrameSize)
            {
                TlsServerName = options.TlsServerName,
                TlsValidation = options.TlsValidation ?? TcpTransport.TrustingRoot(options.TlsTrustedRoot, options.TlsServerName ?? options.Host),
            };
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
            if (options.HeartbeatInterval > TimeSpan.Zero) c.StartHeartbeat(_ => Beat(c), options.HeartbeatInterval);
            Task.Run(() => ReadLoop(c));
            Task.Run(() => WriteLoop(c));
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

        // Resume sends ResumeReq, after a RefreshReq when the access token has expired.
        private void Resume(Connection c)
        {
            string refresh;
            lock (gate)
            {
                refresh = refreshToken;
                if (refresh == null || DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() < tokenExpiresMs - 5000) refresh = null;
            }
            if (refresh == null)
            {
                SendResume(c);
                return;
            }
            var p = new Pending((msg, err, now) =>
            {
                var me = err as MoonforgeException;
                if (me != null && me.Code != ErrorCode.Unavailable && me.Code != ErrorCode.Timeout)
                {
                    lock (gate) refreshToken = null; // refused: the resume fails and asks for a login
                }
                SendResume(c);
            }, null);
            StartRequest(RefreshReq.MessageId, Proto.Encode(new RefreshReq { RefreshToken = refresh }), options.RequestTimeout, CancellationToken.None, p, c);
        }

        private void SendResume(Connection c)
        {
            ResumeReq req;
            lock (gate) req = new ResumeReq { Token = token ?? "", LastPushSeq = lastPushSeq };
            var p = new Pending((msg, err, now) => ResumeAnswered(c, msg as ResumeAck, err), null);
            StartRequest(ResumeReq.MessageId, Proto.Encode(req), options.RequestTimeout, CancellationToken.None, p, c);
        }

        // ResumeAnswered handles the answer to ResumeReq, on a network thread.
        private void ResumeAnswered(Connection c, ResumeAck ack, Exception err)
        {
            var me = err as MoonforgeException;
            if (ack == null && (me == null || me.Code == ErrorCode.Unavailable || me.Code == ErrorCode.Timeout || me.Code == ErrorCode.Internal))
            {
                // The connection failed or the server could not answer now: try again on a new one.
                Log("resume not answered: " + (err != null ? err.Message : "unexpected reply"));
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
            foreach (var p in failed) p.Fail(new MoonforgeException(ErrorCode.ResumeFailed, "the session could not be resumed: " + me.Message), true);
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
                        p.Seq = seq;
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
            if (refused != null) p.Fail(refused, false);
            else p.Arm(this, timeout, cancellationToken);
        }

        // TakePending removes the request of seq from the table and returns it: any request, or only
        // want when it is not null.
        private Pending TakePending(uint seq, Pending want)
        {
            lock (gate)
            {
                Pending p;
                if (!pending.TryGetValue(seq, out p) || (want != null && p != want)) return null;
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
                    Task room = dispatch.WaitForRoomAsync();
                    if (!room.IsCompleted)
                    {
                        // The game is not pumping: stop reading, so that the server holds what follows.
                        c.Paused = true;
                        await room.ConfigureAwait(false);
                        c.Paused = false;
                        c.Touch();
                        if (c.Dead) return;
                    }
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
                var refreshed = msg as RefreshAck;
                var logout = msg as LogoutAck;
                if (login != null || resumed != null || refreshed != null || logout != null)
                {
                    lock (gate)
                    {
                        if (login != null)
                        {
                            token = login.Token;
                            tokenExpiresMs = login.ExpiresAtMs;
                            refreshToken = login.RefreshToken != "" ? login.RefreshToken : null;
                            playerId = login.PlayerId;
                            sessionId = login.SessionId;
                            lastPushSeq = 0;
                            loggedOut = false;
                        }
                        else if (resumed != null)
                        {
                            token = resumed.Token;
                        }
                        else if (refreshed != null)
                        {
                            token = refreshed.Token;
                            tokenExpiresMs = refreshed.ExpiresAtMs;
                            refreshToken = refreshed.RefreshToken != "" ? refreshed.RefreshToken : null;
                        }
                        else
                        {
                            // The server closes the connection next: no reconnect, no resume.
                            token = null;
                            refreshToken = null;
                            loggedOut = true;
                        }
                    }
                }
                Pending p = TakePending(f.Seq, null);
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
                    Log("undecodable Kick: " + e.Message);
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
                Log("dropped push " + f.Seq + ": msg_id " + f.MsgId + " is not in the client's MessageTable");
                return;
            }
            IMessage push;
            try
            {
                push = info.Decode(f.Payload, 0, f.Payload.Length);
            }
            catch (ProtoException e)
            {
                Log("dropped push " + f.Seq + ": undecodable " + info.FullName + ": " + e.Message);
                return;
            }
            uint seq = f.Seq;
            dispatch.Post(() => DispatchPush(info, push, seq));
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
            bool logout;
            lock (gate)
            {
                if (c.Dead) return;
                c.Dead = true;
                if (conn != c)
                {
                    c.Shutdown();
                    return;
                }
                conn = null;
                foreach (var kv in pending)
                {
                    if (kv.Value.Conn == c) failed.Add(kv.Value);
                }
                foreach (var p in failed) pending.Remove(p.Seq);
                kick = kickCode;
                logout = loggedOut;
                resuming = false;
                reconnect = options.Reconnect && !closed && !loggedOut && kick != ErrorCode.KickedDuplicateLogin && kick != ErrorCode.Unauthenticated;
                if (reconnect) reconnecting = true;
                else failed.AddRange(TakeHeld());
            }
            c.Shutdown();
            var err = new MoonforgeException(ErrorCode.Unavailable, "connection lost before the reply: " + why.Message, 0, why);
            foreach (var p in failed) p.Fail(err, true);
            DisconnectReason cause = logout ? DisconnectReason.LoggedOut : Cause(why, kick);
            RaiseEvent(ClientEvent.Disconnected, new EventInfo(kick, Describe(cause), 0, reconnect, cause, why.Message, 0));
            if (reconnect) Task.Run(() => ReconnectLoop());
        }

        // Cause names why a connection ended: the kick before it, or the error that ended it.
        private static DisconnectReason Cause(Exception why, ErrorCode kick)
        {
            if (kick != ErrorCode.None) return DisconnectReason.Kicked;
            if (why is TimeoutException) return DisconnectReason.ServerSilent;
            var me = why as MoonforgeException;
            if (me != null && (me.Code == ErrorCode.MalformedFrame || me.Code == ErrorCode.FrameTooLarge)) return DisconnectReason.ProtocolViolation;
            return DisconnectReason.ConnectionLost;
        }

        private static string Describe(DisconnectReason cause)
        {
            switch (cause)
            {
                case DisconnectReason.ClosedByClient: return "closed by the client";
                case DisconnectReason.ServerSilent: return "nothing from the server for 3 heartbeat intervals";
                case DisconnectReason.Kicked: return "kicked by the server";
                case DisconnectReason.ProtocolViolation: return "the server broke the frame format";
                case DisconnectReason.ReconnectFailed: return "gave up reconnecting";
                case DisconnectReason.LoggedOut: return "logged out";
                default: return "the connection was lost";
            }
        }

        // ReconnectLoop tries the next endpoint on each attempt (the lost one was tried last), after the
        // back-off delay.
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
                RaiseEvent(ClientEvent.Reconnecting, new EventInfo(ErrorCode.None, "", 0, true, DisconnectReason.None, "", attempt));
                Exception why;
                try
                {
                    Connection c = await OpenAsync((endpoint + 1) % endpoints.Count, CancellationToken.None).ConfigureAwait(false);
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
                Log("reconnect attempt " + attempt + " failed: " + why.Message);
                if (options.ReconnectMaxAttempts > 0 && attempt >= options.ReconnectMaxAttempts)
                {
                    List<Pending> failed;
                    lock (gate)
                    {
                        reconnecting = false;
                        failed = TakeHeld();
                    }
                    var err = new MoonforgeException(ErrorCode.Unavailable, "gave up reconnecting after " + attempt + " attempts", 0, why);
                    foreach (var p in failed) p.Fail(err, true);
                    RaiseEvent(ClientEvent.Disconnected, new EventInfo(ErrorCode.None, Describe(DisconnectReason.ReconnectFailed), 0, false, DisconnectReason.ReconnectFailed, err.Message, attempt));
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
            if (!c.Paused && c.SilentFor > TimeSpan.FromTicks(options.HeartbeatInterval.Ticks * 3))
            {
                Lost(c, new TimeoutException("no frame from the server for 3 heartbeat intervals"));
                return;
            }
            var ping = new Ping { ClientTimeMs = NowMs(), AckPushSeq = LastPushSeq };
            var p = new Pending((msg, err, now) =>
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

            private readonly MoonforgeClient client;
            private Timer heartbeat; // guarded by this

            internal Connection(ITransport transport, MoonforgeClient client)
            {
                Transport = transport;
                this.client = client;
                Signal = new SemaphoreSlim(0);
            }

            internal ITransport Transport { get; private set; }

            internal SemaphoreSlim Signal { get; private set; }

            internal volatile bool Dead;

            // Paused: the reader waits for room in the game's queue, so silence proves nothing.
            internal volatile bool Paused;

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

            // StartHeartbeat runs beat every interval until Shutdown; nothing on a dead connection.
            internal void StartHeartbeat(TimerCallback beat, TimeSpan every)
            {
                lock (this)
                {
                    if (Dead) return;
                    heartbeat = new Timer(beat, null, every, every);
                    Interlocked.Increment(ref client.liveHeartbeats);
                }
            }

            internal void Shutdown()
            {
                Timer t;
                lock (this)
                {
                    Dead = true;
                    t = heartbeat;
                    heartbeat = null;
                }
                if (t != null)
                {
                    t.Dispose();
                    Interlocked.Decrement(ref client.liveHeartbeats);
                }
                Signal.Release();
                Transport.Dispose();
            }
        }

        /// <summary>A request waiting for its reply. Exactly one of reply, timeout, cancellation or
        /// failure ends it: whoever takes it out of the client's table.</summary>
        private sealed class Pending
        {
            private readonly Action<IMessage, Exception, bool> done;
            private readonly Action<bool> cancelled;
            private MoonforgeClient client;
            private TimeSpan timeout;
            private Timer timer; // timer, registration and released are guarded by this
            private CancellationTokenRegistration registration;
            private bool released;

            // done runs with the reply or the error, and whether the game's task must complete at once
            // rather than in Update; cancelled (may be null) when the caller's token fires. Both run on
            // whichever thread ends the request.
            internal Pending(Action<IMessage, Exception, bool> done, Action<bool> cancelled)
            {
                this.done = done;
                this.cancelled = cancelled;
            }

            // Seq is set under the client's gate when the request enters its table.
            internal uint Seq;

            // The connection the request went out on; null while held. Guarded by the client's gate.
            internal Connection Conn;

            // Arm starts the timeout and watches the caller's token, outside the client's gate; the
            // request may have ended already (a fast reply, a token cancelled meanwhile): then it does
            // nothing, and what it registered is undone.
            internal void Arm(MoonforgeClient owner, TimeSpan after, CancellationToken cancellationToken)
            {
                client = owner;
                timeout = after;
                if (after != Timeout.InfiniteTimeSpan && after.TotalMilliseconds <= int.MaxValue)
                {
                    lock (this)
                    {
                        if (released) return;
                        timer = new Timer(s => ((Pending)s).TimedOut(), this, after, Timeout.InfiniteTimeSpan);
                    }
                }
                if (!cancellationToken.CanBeCanceled) return;
                CancellationTokenRegistration r = cancellationToken.Register(s => ((Pending)s).CancelledByCaller(), this);
                bool undo;
                lock (this)
                {
                    undo = released;
                    if (!undo) registration = r;
                }
                if (undo) r.Dispose();
            }

            internal void Complete(IMessage msg, Exception err)
            {
                Release();
                done(msg, err, false);
            }

            internal void Fail(Exception err, bool now)
            {
                Release();
                done(null, err, now);
            }

            private void TimedOut()
            {
                if (client.TakePending(Seq, this) != this) return;
                Fail(new MoonforgeException(ErrorCode.Timeout, "no reply within " + timeout.TotalSeconds + " s"), false);
            }

            private void CancelledByCaller()
            {
                if (client.TakePending(Seq, this) != this) return;
                Release();
                if (cancelled != null) cancelled(false);
            }

            private void Release()
            {
                Timer t;
                CancellationTokenRegistration r;
                lock (this)
                {
                    if (released) return;
                    released = true;
                    t = timer;
                    r = registration;
                }
                if (t != null) t.Dispose();
                r.Dispose();
            }
        }
    }
}
