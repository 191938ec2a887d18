using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

[assembly: InternalsVisibleTo("MoonforgeTests")]
[assembly: InternalsVisibleTo("Moonforge.Client.Tests")]

namespace Moonforge
{
    /// <summary>
    /// A client of a Moonforge server (protocol v1): requests matched to replies by seq, pushes by
    /// message type, heartbeat, and reconnect with automatic resume of the session.
    /// </summary>
    /// <remarks>
    /// Threading: the network runs on thread-pool threads. Everything the game sees — push handlers,
    /// <see cref="EventRaised"/>, and the completion of the tasks that <see cref="RequestAsync{T}"/>
    /// returns — happens inside <see cref="Update"/>, on the thread that calls it (call it once per frame
    /// from the main thread). Without a SynchronizationContext, code after <c>await client.XAsync()</c>
    /// runs inside Update; with Unity's, on the main thread as usual. So never block on such a task
    /// (<c>.Result</c>, <c>.Wait()</c>) on the Update thread: it would wait forever. Every public
    /// method is safe to call from any thread. Replies and pushes reach the game in the order they
    /// arrived.
    /// </remarks>
    public sealed partial class MoonforgeClient : IDisposable
    {
        private readonly ClientOptions options;
        private readonly MessageTable messages;
        private readonly Action<string> logSink;
        private readonly DispatchQueue dispatch;
        private readonly CancellationTokenSource lifetime = new CancellationTokenSource();

        // Everything below is guarded by gate.
        private readonly object gate = new object();
        private readonly Dictionary<uint, Pending> pending = new Dictionary<uint, Pending>();
        private readonly List<Frame> held = new List<Frame>();
        private readonly Dictionary<ushort, List<PushHandler>> handlers = new Dictionary<ushort, List<PushHandler>>();
        private readonly List<PushHandler> anyHandlers = new List<PushHandler>();
        private readonly HashSet<ushort> unhandledLogged = new HashSet<ushort>();

        // The game's requests whose task is not complete yet, with their outcome once it is known and
        // queued for Update (null before): what Close completes at once.
        private readonly Dictionary<Pending, Action> open = new Dictionary<Pending, Action>();
        private readonly List<KeyValuePair<string, int>> endpoints;
        private int endpoint; // index in endpoints tried last; ConnectAsync and ReconnectLoop never run at once
        private Connection conn;
        private uint nextSeq;
        private uint lastPushSeq;
        private string token;
        private long tokenExpiresMs; // of token, Unix ms
        private string refreshToken;
        private bool loggedOut;
        private string playerId = "";
        private string sessionId = "";
        private bool connecting;
        private bool reconnecting;
        private bool resuming;
        private bool closed;
        private ErrorCode kickCode;
        private long roundTripTicks = -1;
        private int liveHeartbeats;

        /// <summary>Creates a client; it does not connect until <see cref="ConnectAsync"/>.</summary>
        public MoonforgeClient(ClientOptions options)
        {
            if (options == null) throw new ArgumentNullException("options");
            this.options = options;
            endpoints = options.EndpointList();
            messages = options.Messages ?? MessageTable.CreateDefault();
            logSink = options.Log ?? (s => Console.Error.WriteLine("moonforge: " + s));
            dispatch = new DispatchQueue(options.MaxQueuedWork);
        }

        /// <summary>
        /// Every connection and session event, raised inside <see cref="Update"/>: Connected,
        /// Disconnected, Reconnecting, Resumed, Kicked, LoginRequired. The events of the same names
        /// below carry one kind each and are raised right after this one.
        /// </summary>
        public event Action<ClientEvent, EventInfo> EventRaised;

        /// <summary>A connection is up, raised inside <see cref="Update"/>.</summary>
        public event Action<EventInfo> Connected;

        /// <summary>The connection is gone (<see cref="EventInfo.Disconnect"/> says why), raised inside <see cref="Update"/>.</summary>
        public event Action<EventInfo> Disconnected;

        /// <summary>A reconnect attempt starts, raised inside <see cref="Update"/>.</summary>
        public event Action<EventInfo> Reconnecting;

        /// <summary>The session was resumed on a new connection, raised inside <see cref="Update"/>.</summary>
        public event Action<EventInfo> Resumed;

        /// <summary>The server sent Kick, raised inside <see cref="Update"/>.</summary>
        public event Action<EventInfo> Kicked;

        /// <summary>The session could not be resumed: log in again. Raised inside <see cref="Update"/>.</summary>
        public event Action<EventInfo> LoginRequired;

        /// <summary>The options the client was created with.</summary>
        public ClientOptions Options
        {
            get { return options; }
        }

        /// <summary>The messages the client can send and receive.</summary>
        public MessageTable Messages
        {
            get { return messages; }
        }

        /// <summary>Whether a connection is up now.</summary>
        public bool IsConnected
        {
            get { lock (gate) return conn != null; }
        }

        /// <summary>Whether the client holds a session (logged in, not yet refused a resume).</summary>
        public bool IsLoggedIn
        {
            get { lock (gate) return token != null; }
        }

        /// <summary>The player id of the last login; "" before.</summary>
        public string PlayerId
        {
            get { lock (gate) return playerId; }
        }

        /// <summary>The session id of the last login; "" before.</summary>
        public string SessionId
        {
            get { lock (gate) return sessionId; }
        }

        /// <summary>The session's current token (opaque), or null without a session.</summary>
        public string Token
        {
            get { lock (gate) return token; }
        }

        /// <summary>The session's refresh token (good for one RefreshReq; it changes with every refresh), or
        /// null without one. Keep it to restore the session after an app restart with
        /// <see cref="RestoreSessionAsync"/>.</summary>
        public string RefreshToken
        {
            get { lock (gate) return refreshToken; }
        }

        /// <summary>The highest push seq received and queued for <see cref="Update"/>: what Ping acknowledges
        /// and what ResumeReq asks the server to continue after.</summary>
        public uint LastPushSeq
        {
            get { lock (gate) return lastPushSeq; }
        }

        /// <summary>How many replies, pushes and events wait for <see cref="Update"/>.</summary>
        public int QueuedWork
        {
            get { return dispatch.Count; }
        }

        /// <summary>Heartbeat timers running now: one per live connection (for tests).</summary>
        internal int LiveHeartbeats
        {
            get { return Volatile.Read(ref liveHeartbeats); }
        }

        /// <summary>The round trip of the last Ping, or null before the first Pong.</summary>
        public TimeSpan? RoundTripTime
        {
            get
            {
                long t = Interlocked.Read(ref roundTripTicks);
                return t < 0 ? (TimeSpan?)null : TimeSpan.FromTicks(t);
            }
        }

        /// <summary>
        /// Connects to the server. Completes (on a network thread) when the connection is up; Connected
        /// is raised at the next <see cref="Update"/>. Call it once; after a loss the client reconnects by
        /// itself when <see cref="ClientOptions.Reconnect"/> is set. With several
        /// <see cref="ClientOptions.Endpoints"/> it tries them in order until one answers.
        /// </summary>
        /// <exception cref="MoonforgeException">Unavailable: no server can be reached.</exception>
        public async Task ConnectAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            lock (gate)
            {
                if (closed) throw new ObjectDisposedException("MoonforgeClient");
                if (conn != null || connecting || reconnecting) throw new InvalidOperationException("already connected");
                connecting = true;
            }
            try
            {
                Connection c = null;
                int start = endpoint;
                for (int i = 0; c == null; i++)
                {
                    int at = (start + i) % endpoints.Count;
                    try
                    {
                        c = await OpenAsync(at, cancellationToken).ConfigureAwait(false);
                    }
                    catch (MoonforgeException e)
                    {
                        if (i + 1 >= endpoints.Count) throw;
                        Log(e.Message + "; trying the next endpoint");
                    }
                }
                Attach(c);
            }
            finally
            {
                lock (gate) connecting = false;
            }
        }

        /// <summary>Trades the session's refresh token (good once) for a new access token and the next
        /// refresh token (RefreshReq); the client keeps both. It refreshes by itself before resuming with
        /// an expired access token.</summary>
        /// <exception cref="MoonforgeException">Unauthenticated: no session, or the refresh token was refused.</exception>
        public Task<RefreshAck> RefreshAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            string refresh;
            lock (gate) refresh = refreshToken;
            if (refresh == null)
            {
                var t = new TaskCompletionSource<RefreshAck>();
                t.SetException(new MoonforgeException(ErrorCode.Unauthenticated, "no refresh token: log in first"));
                return t.Task;
            }
            return RequestAsync<RefreshAck>(new RefreshReq { RefreshToken = refresh }, null, cancellationToken);
        }

        /// <summary>Restores the player's session after an app restart from a refresh token the game kept
        /// (<see cref="RefreshToken"/>): RefreshReq trades it for a new access token, then a login with
        /// that token (LoginReq, method "token") opens a new session of the same player. Completes with its
        /// LoginAck; keep <see cref="RefreshToken"/> again, the one given is used up.</summary>
        /// <exception cref="MoonforgeException">Unauthenticated: the refresh token was refused (expired,
        /// used already, or revoked by a logout): log in another way.</exception>
        public async Task<LoginAck> RestoreSessionAsync(string savedRefreshToken, CancellationToken cancellationToken = default(CancellationToken))
        {
            if (string.IsNullOrEmpty(savedRefreshToken)) throw new ArgumentException("no refresh token to restore a session with", "savedRefreshToken");
            RefreshAck refreshed = await RequestAsync<RefreshAck>(new RefreshReq { RefreshToken = savedRefreshToken }, null, cancellationToken).ConfigureAwait(false);
            return await LoginAsync("token", "", refreshed.Token, null, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>Logs out (LogoutReq): the server revokes the session's tokens, or every session's of
        /// the player with allSessions, then closes the connection; the client does not reconnect.</summary>
        public Task<LogoutAck> LogoutAsync(bool allSessions = false, CancellationToken cancellationToken = default(CancellationToken))
        {
            return RequestAsync<LogoutAck>(new LogoutReq { AllSessions = allSessions }, null, cancellationToken);
        }

        /// <summary>Logs in (LoginReq) and completes with the LoginAck; the session it opens is resumed
        /// automatically after a connection loss.</summary>
        /// <param name="method">"guest", "password", "token", or a method the server's Lua registers.</param>
        /// <param name="account">Device id (guest) or account name.</param>
        /// <param name="secret">Password or token; "" for guest.</param>
        /// <param name="extra">Method-specific extras, e.g. {"register": "1"}; may be null.</param>
        /// <param name="cancellationToken">Cancels the wait (the server may still log in).</param>
        public Task<LoginAck> LoginAsync(string method, string account, string secret = "", IDictionary<string, string> extra = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            var req = new LoginReq { Method = method, Account = account, Secret = secret };
            if (extra != null)
            {
                foreach (var kv in extra) req.Extra[kv.Key] = kv.Value;
            }
            return RequestAsync<LoginAck>(req, null, cancellationToken);
        }

        /// <summary>Logs in as a guest identified by deviceId.</summary>
        public Task<LoginAck> LoginGuestAsync(string deviceId, CancellationToken cancellationToken = default(CancellationToken))
        {
            return LoginAsync("guest", deviceId, "", null, cancellationToken);
        }

        /// <summary>
        /// Sends request and completes with its reply, inside <see cref="Update"/>. Fails with
        /// <see cref="MoonforgeException"/>: the server's Error (framework or application code), Timeout
        /// after timeout (default <see cref="ClientOptions.RequestTimeout"/>), Unavailable when the
        /// connection is lost before the reply (the server may or may not have handled it). Cancelled
        /// through cancellationToken. During a reconnect the request waits for the resume, then goes out.
        /// A timeout of Timeout.InfiniteTimeSpan waits for ever; one of zero or less fails at once.
        /// </summary>
        /// <typeparam name="T">The reply type; another reply type is a DecodeFailed error.</typeparam>
        /// <exception cref="ArgumentException">request or T has no message id in <see cref="Messages"/>.</exception>
        public Task<T> RequestAsync<T>(IMessage request, TimeSpan? timeout = null, CancellationToken cancellationToken = default(CancellationToken)) where T : class, IMessage
        {
            if (request == null) throw new ArgumentNullException("request");
            MessageInfo req = Require(request.GetType());
            MessageInfo rep = Require(typeof(T));
            var tcs = new TaskCompletionSource<T>();
            if (cancellationToken.IsCancellationRequested)
            {
                tcs.SetCanceled();
                return tcs.Task;
            }
            Pending p = null;
            p = new Pending(
                (msg, err, now) =>
                {
                    T reply = msg as T;
                    if (err == null && reply == null)
                    {
                        err = new MoonforgeException(ErrorCode.DecodeFailed, "expected " + rep.FullName + " in reply to " + req.FullName + ", got " + DescribeType(msg));
                    }
                    if (err != null) Settle(p, () => tcs.TrySetException(err), now);
                    else Settle(p, () => tcs.TrySetResult(reply), now);
                },
                now => Settle(p, () => tcs.TrySetCanceled(), now));
            lock (gate) open[p] = null;
            StartRequest(req.Id, Proto.Encode(request), timeout ?? options.RequestTimeout, cancellationToken, p, null);
            return tcs.Task;
        }

        /// <summary>Sends a one-way message (seq 0): no reply. Dropped, with a log line, when there is no
        /// connection and none is being restored.</summary>
        /// <exception cref="ArgumentException">The message has no message id in <see cref="Messages"/>.</exception>
        public void Send(IMessage message)
        {
            if (message == null) throw new ArgumentNullException("message");
            MessageInfo info = Require(message.GetType());
            var f = new Frame(info.Id, 0, 0, Proto.Encode(message));
            if (f.Payload.Length + Frame.HeaderSize > options.MaxFrameSize)
            {
                throw new ArgumentException(info.FullName + " is larger than the maximum frame size");
            }
            lock (gate)
            {
                if (conn != null && !resuming)
                {
                    conn.Enqueue(f);
                    return;
                }
                if (!closed && (reconnecting || resuming))
                {
                    held.Add(f);
                    return;
                }
            }
            Log("not connected: dropped one-way " + info.FullName);
        }

        /// <summary>Calls handler, inside <see cref="Update"/>, for each push of type T with its push seq
        /// (0 for messages outside the session's sequence). Dispose the result to stop.</summary>
        /// <exception cref="ArgumentException">T has no message id in <see cref="Messages"/>.</exception>
        public IDisposable On<T>(Action<T, uint> handler) where T : class, IMessage
        {
            if (handler == null) throw new ArgumentNullException("handler");
            MessageInfo info = Require(typeof(T));
            var h = new PushHandler(this, info.Id, (m, seq) => handler((T)m, seq));
            lock (gate)
            {
                List<PushHandler> list;
                if (!handlers.TryGetValue(info.Id, out list))
                {
                    list = new List<PushHandler>();
                    handlers[info.Id] = list;
                }
                list.Add(h);
            }
            return h;
        }

        /// <summary>Calls handler, inside <see cref="Update"/>, for every push of any type with its push
        /// seq, after the handlers of its type. Dispose the result to stop. A push that neither kind of
        /// handler takes is logged, once per type.</summary>
        public IDisposable OnAny(Action<IMessage, uint> handler)
        {
            if (handler == null) throw new ArgumentNullException("handler");
            var h = new PushHandler(this, 0, handler);
            lock (gate) anyHandlers.Add(h);
            return h;
        }

        /// <summary>Calls handler, inside <see cref="Update"/>, for each push of type T.</summary>
        public IDisposable On<T>(Action<T> handler) where T : class, IMessage
        {
            if (handler == null) throw new ArgumentNullException("handler");
            return On<T>((m, seq) => handler(m));
        }

        /// <summary>
        /// Runs, on the calling thread, what the network has handed over before the call: replies
        /// (completing request tasks), push handlers, events, in arrival order, at most
        /// <see cref="ClientOptions.MaxWorkPerUpdate"/> of them (the rest wait for the next call). Over
        /// KCP it first drives the transport (socket and timers). Call it every frame from the main
        /// thread; it never blocks. An exception from a handler is logged and the rest still runs.
        /// Returns how many items ran.
        /// </summary>
        public int Update()
        {
            Connection c;
            lock (gate) c = conn;
            var polled = c != null ? c.Transport as IPolledTransport : null;
            if (polled != null) polled.Poll();
            return dispatch.Drain(options.MaxWorkPerUpdate, e => Log("handler failed: " + e));
        }

        /// <summary>Closes the connection for good: no reconnect. Every request task completes before Close
        /// returns: with its outcome when that had arrived, else faulted with Unavailable. Pushes not yet
        /// handled are dropped; Disconnected is raised at the next <see cref="Update"/>, if any.</summary>
        public void Close()
        {
            Connection c;
            List<Pending> failed;
            var known = new List<Action>();
            lock (gate)
            {
                if (closed) return;
                closed = true;
                c = conn;
                conn = null;
                if (c != null) c.Dead = true;
                failed = new List<Pending>(pending.Values);
                pending.Clear();
                held.Clear();
                reconnecting = false;
                resuming = false;
                foreach (var kv in new List<KeyValuePair<Pending, Action>>(open))
                {
                    if (kv.Value == null) continue;
                    open.Remove(kv.Key);
                    known.Add(kv.Value);
                }
            }
            lifetime.Cancel();
            if (c != null) c.Shutdown();
            dispatch.Clear();
            foreach (var complete in known) complete();
            var err = new MoonforgeException(ErrorCode.Unavailable, "client closed");
            foreach (var p in failed) p.Fail(err, true);
            RaiseEvent(ClientEvent.Disconnected, new EventInfo(ErrorCode.None, Describe(DisconnectReason.ClosedByClient), 0, false, DisconnectReason.ClosedByClient, "", 0));
        }

        /// <summary>Same as <see cref="Close"/>.</summary>
        public void Dispose()
        {
            Close();
        }

        /// <summary>Drops the connection underneath, as a network failure would (for tests and QA), at once:
        /// <see cref="IsConnected"/> is false when it returns, requests in flight have failed with
        /// Unavailable, new ones wait for the resume, and the client reconnects as after a real loss.</summary>
        public void SimulateNetworkLoss()
        {
            Connection c;
            lock (gate) c = conn;
            if (c != null) Lost(c, new System.IO.IOException("simulated network loss"));
        }

        // Log reports to ClientOptions.Log; an exception from it is swallowed, so that a Log touching a
        // Unity object off the main thread cannot stop a network loop.
        private void Log(string line)
        {
            try
            {
                logSink(line);
            }
            catch (Exception)
            {
                // Nowhere left to report it.
            }
        }

        // Settle hands the outcome of a game request to its task: at the next Update, or at once when now
        // is set or the client is closed (no Update may follow). The first outcome wins.
        private void Settle(Pending p, Action complete, bool now)
        {
            lock (gate)
            {
                Action known;
                if (!open.TryGetValue(p, out known) || known != null) return;
                if (!now && !closed)
                {
                    open[p] = complete;
                    dispatch.Post(() =>
                    {
                        bool mine;
                        lock (gate) mine = open.Remove(p);
                        if (mine) complete();
                    });
                    return;
                }
                open.Remove(p);
            }
            complete();
        }

        private MessageInfo Require(Type type)
        {
            MessageInfo info = messages.ByType(type);
            if (info == null) throw new ArgumentException(type.FullName + " has no message id in the client's MessageTable");
            return info;
        }

        private string DescribeType(IMessage msg)
        {
            if (msg == null) return "nothing";
            MessageInfo info = messages.ByType(msg.GetType());
            return info != null ? info.FullName : msg.GetType().FullName;
        }

        private void RaiseEvent(ClientEvent ev, EventInfo info)
        {
            dispatch.Post(() =>
            {
                var all = EventRaised;
                if (all != null)
                {
                    foreach (Action<ClientEvent, EventInfo> h in all.GetInvocationList()) Isolated(() => h(ev, info));
                }
                Action<EventInfo> one = null;
                switch (ev)
                {
                    case ClientEvent.Connected: one = Connected; break;
                    case ClientEvent.Disconnected: one = Disconnected; break;
                    case ClientEvent.Reconnecting: one = Reconnecting; break;
                    case ClientEvent.Resumed: one = Resumed; break;
                    case ClientEvent.Kicked: one = Kicked; break;
                    case ClientEvent.LoginRequired: one = LoginRequired; break;
                }
                if (one == null) return;
                foreach (Action<EventInfo> h in one.GetInvocationList()) Isolated(() => h(info));
            });
        }

        // Isolated runs a game callback; what it throws is logged, and the next callback still runs.
        private void Isolated(Action callback)
        {
            try
            {
                callback();
            }
            catch (Exception e)
            {
                Log("handler failed: " + e);
            }
        }

        private void DispatchPush(MessageInfo info, IMessage msg, uint seq)
        {
            var list = new List<PushHandler>();
            bool logUnhandled;
            lock (gate)
            {
                if (closed) return;
                List<PushHandler> l;
                if (handlers.TryGetValue(info.Id, out l)) list.AddRange(l);
                list.AddRange(anyHandlers);
                logUnhandled = list.Count == 0 && unhandledLogged.Add(info.Id);
            }
            if (logUnhandled) Log("no handler for push " + info.FullName + " (logged once per type; OnAny takes every push)");
            foreach (var h in list)
            {
                if (!h.Removed) Isolated(() => h.Invoke(msg, seq));
            }
        }

        private void RemoveHandler(PushHandler h)
        {
            lock (gate)
            {
                h.Removed = true;
                List<PushHandler> list;
                if (handlers.TryGetValue(h.MsgId, out list)) list.Remove(h);
                anyHandlers.Remove(h);
            }
        }

        /// <summary>A registration of <see cref="On{T}(Action{T, uint})"/>.</summary>
        private sealed class PushHandler : IDisposable
        {
            private readonly MoonforgeClient client;
            private readonly Action<IMessage, uint> handler;

            internal PushHandler(MoonforgeClient client, ushort msgId, Action<IMessage, uint> handler)
            {
                this.client = client;
                MsgId = msgId;
                this.handler = handler;
            }

            internal ushort MsgId { get; private set; }

            internal volatile bool Removed;

            internal void Invoke(IMessage msg, uint seq)
            {
                handler(msg, seq);
            }

            public void Dispose()
            {
                client.RemoveHandler(this);
            }
        }
    }
}
