using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

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
        private readonly Action<string> log;
        private readonly DispatchQueue dispatch = new DispatchQueue();
        private readonly CancellationTokenSource lifetime = new CancellationTokenSource();

        // Everything below is guarded by gate.
        private readonly object gate = new object();
        private readonly Dictionary<uint, Pending> pending = new Dictionary<uint, Pending>();
        private readonly List<Frame> held = new List<Frame>();
        private readonly Dictionary<ushort, List<PushHandler>> handlers = new Dictionary<ushort, List<PushHandler>>();
        private Connection conn;
        private uint nextSeq;
        private uint lastPushSeq;
        private string token;
        private string playerId = "";
        private string sessionId = "";
        private bool connecting;
        private bool reconnecting;
        private bool resuming;
        private bool closed;
        private ErrorCode kickCode;
        private long roundTripTicks = -1;

        /// <summary>Creates a client; it does not connect until <see cref="ConnectAsync"/>.</summary>
        public MoonforgeClient(ClientOptions options)
        {
            if (options == null) throw new ArgumentNullException("options");
            this.options = options;
            messages = options.Messages ?? MessageTable.CreateDefault();
            log = options.Log ?? (s => Console.Error.WriteLine("moonforge: " + s));
        }

        /// <summary>
        /// Connection and session events, raised inside <see cref="Update"/>: Connected, Disconnected,
        /// Resumed, Kicked, LoginRequired.
        /// </summary>
        public event Action<ClientEvent, EventInfo> EventRaised;

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

        /// <summary>The highest push seq received and queued for <see cref="Update"/>: what Ping acknowledges
        /// and what ResumeReq asks the server to continue after.</summary>
        public uint LastPushSeq
        {
            get { lock (gate) return lastPushSeq; }
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
        /// itself when <see cref="ClientOptions.Reconnect"/> is set.
        /// </summary>
        /// <exception cref="MoonforgeException">Unavailable: the server cannot be reached.</exception>
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
                Connection c = await OpenAsync(cancellationToken).ConfigureAwait(false);
                Attach(c);
            }
            finally
            {
                lock (gate) connecting = false;
            }
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
            var p = new Pending(
                (msg, err) =>
                {
                    T reply = msg as T;
                    if (err == null && reply == null)
                    {
                        err = new MoonforgeException(ErrorCode.DecodeFailed, "expected " + rep.FullName + " in reply to " + req.FullName + ", got " + DescribeType(msg));
                    }
                    if (err != null) dispatch.Post(() => tcs.TrySetException(err));
                    else dispatch.Post(() => tcs.TrySetResult(reply));
                },
                () => dispatch.Post(() => tcs.TrySetCanceled()));
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
            log("not connected: dropped one-way " + info.FullName);
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

        /// <summary>Calls handler, inside <see cref="Update"/>, for each push of type T.</summary>
        public IDisposable On<T>(Action<T> handler) where T : class, IMessage
        {
            if (handler == null) throw new ArgumentNullException("handler");
            return On<T>((m, seq) => handler(m));
        }

        /// <summary>
        /// Runs, on the calling thread, what the network has handed over since the last call: replies
        /// (completing request tasks), push handlers, events, in arrival order. Over KCP it first drives
        /// the transport (socket and timers). Call it every frame from the main thread; it never blocks.
        /// Returns how many items ran.
        /// </summary>
        public int Update()
        {
            Connection c;
            lock (gate) c = conn;
            var polled = c != null ? c.Transport as IPolledTransport : null;
            if (polled != null) polled.Poll();
            return dispatch.Drain(e => log("handler failed: " + e));
        }

        /// <summary>Closes the connection for good: no reconnect; requests still waiting fail with
        /// Unavailable, and Disconnected is raised at the next <see cref="Update"/>.</summary>
        public void Close()
        {
            Connection c;
            List<Pending> failed;
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
            }
            lifetime.Cancel();
            if (c != null) c.Shutdown();
            var err = new MoonforgeException(ErrorCode.Unavailable, "client closed");
            foreach (var p in failed) p.Fail(err);
            RaiseEvent(ClientEvent.Disconnected, new EventInfo(0, "closed by the client", 0, false));
        }

        /// <summary>Same as <see cref="Close"/>.</summary>
        public void Dispose()
        {
            Close();
        }

        /// <summary>Drops the connection underneath, as a network failure would (for tests and QA): the
        /// client reconnects and resumes as after a real loss.</summary>
        public void SimulateNetworkLoss()
        {
            Connection c;
            lock (gate) c = conn;
            if (c != null) c.Transport.Abort();
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
                var h = EventRaised;
                if (h != null) h(ev, info);
            });
        }

        private void DispatchPush(ushort msgId, IMessage msg, uint seq)
        {
            PushHandler[] list;
            lock (gate)
            {
                List<PushHandler> l;
                if (!handlers.TryGetValue(msgId, out l) || l.Count == 0) return;
                list = l.ToArray();
            }
            foreach (var h in list)
            {
                if (h.Removed) continue;
                try
                {
                    h.Invoke(msg, seq);
                }
                catch (Exception e)
                {
                    log("push handler failed: " + e);
                }
            }
        }

        private void RemoveHandler(PushHandler h)
        {
            lock (gate)
            {
                h.Removed = true;
                List<PushHandler> list;
                if (handlers.TryGetValue(h.MsgId, out list)) list.Remove(h);
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
