using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Moonforge
{
    /// <summary>
    /// How a <see cref="MoonforgeClient"/> connects and behaves. Every property has a default; set them
    /// before creating the client and leave them alone afterwards.
    /// </summary>
    public sealed class ClientOptions
    {
        /// <summary>Server host name or address. Default 127.0.0.1.</summary>
        public string Host { get; set; } = "127.0.0.1";

        private int port;

        /// <summary>Server port. Unset (or 0), the default of the transport in docs/protocol.md:
        /// <see cref="DefaultPort"/>.</summary>
        public int Port
        {
            get { return port != 0 ? port : DefaultPort(Transport, UseTls); }
            set { port = value; }
        }

        /// <summary>The server's default port for a transport (docs/protocol.md): TCP 7001, WebSocket
        /// 7002, KCP 7003, TCP over TLS 7443, WebSocket over TLS 7444.</summary>
        public static int DefaultPort(Transport transport, bool tls)
        {
            if (transport == Transport.WebSocket) return tls ? 7444 : 7002;
            if (transport == Transport.Kcp) return 7003;
            return tls ? 7443 : 7001;
        }

        /// <summary>The servers (proxies) to use, as "host:port" ("host" alone takes <see cref="Port"/>;
        /// "[::1]:7001" for IPv6); null or empty (default) means <see cref="Host"/>:<see cref="Port"/> alone.
        /// The client tries them in the order given: <see cref="MoonforgeClient.ConnectAsync"/> moves down
        /// the list until one answers, and every reconnect after a failure or a lost connection starts on
        /// the next one, wrapping around, with the usual back-off. A session resumes on the new server
        /// when it knows the session; otherwise LoginRequired is raised. To spread players over the
        /// servers, shuffle the list (or name a DNS name or load balancer in front of them).</summary>
        public IList<string> Endpoints { get; set; }

        // EndpointList returns the (host, port) pairs to try, in order. It throws ArgumentException for
        // an entry that is not host[:port].
        internal List<KeyValuePair<string, int>> EndpointList()
        {
            var list = new List<KeyValuePair<string, int>>();
            if (Endpoints == null || Endpoints.Count == 0)
            {
                list.Add(new KeyValuePair<string, int>(Host, Port));
                return list;
            }
            foreach (string e in Endpoints)
            {
                list.Add(ParseEndpoint(e, Port));
            }
            return list;
        }

        private static KeyValuePair<string, int> ParseEndpoint(string endpoint, int defaultPort)
        {
            string s = (endpoint ?? "").Trim();
            string host = s;
            string port = null;
            int colon = s.LastIndexOf(':');
            if (s.StartsWith("[", StringComparison.Ordinal))
            {
                int close = s.IndexOf(']');
                if (close < 0 || (close + 1 < s.Length && s[close + 1] != ':')) throw new ArgumentException("endpoint \"" + endpoint + "\" is not host:port");
                host = s.Substring(1, close - 1);
                if (close + 1 < s.Length) port = s.Substring(close + 2);
            }
            else if (colon >= 0 && s.IndexOf(':') == colon)
            {
                host = s.Substring(0, colon);
                port = s.Substring(colon + 1);
            }
            int p = defaultPort;
            if (port != null && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out p) || p < 1 || p > 65535))
            {
                throw new ArgumentException("endpoint \"" + endpoint + "\" has a bad port");
            }
            if (host.Length == 0) throw new ArgumentException("endpoint \"" + endpoint + "\" has no host");
            return new KeyValuePair<string, int>(host, p);
        }

        // At returns a copy of these options that connects to host:port alone, for a TransportFactory.
        internal ClientOptions At(string host, int port)
        {
            var o = (ClientOptions)MemberwiseClone();
            o.Host = host;
            o.Port = port;
            o.Endpoints = null;
            return o;
        }

        /// <summary>TCP (default), WebSocket or KCP (over UDP; driven by <see cref="MoonforgeClient.Update"/>).</summary>
        public Transport Transport { get; set; } = Transport.Tcp;

        /// <summary>TLS on TCP (the server's port 7443), wss:// on WebSocket (7444). Default off.</summary>
        public bool UseTls { get; set; }

        /// <summary>The name the server's certificate must carry; null (default) means Host.</summary>
        public string TlsServerName { get; set; }

        /// <summary>A certificate to trust as a root besides the system's, such as the self-signed
        /// certificate of <c>moonforge run -dev</c> (data/dev-cert.pem). TCP over TLS only.</summary>
        public X509Certificate2 TlsTrustedRoot { get; set; }

        /// <summary>Replaces the certificate check of TCP over TLS altogether; null (default) checks the
        /// chain (system roots and <see cref="TlsTrustedRoot"/>) and the name.</summary>
        public RemoteCertificateValidationCallback TlsValidation { get; set; }

        /// <summary>The WebSocket path. Default /ws.</summary>
        public string WebSocketPath { get; set; } = "/ws";

        /// <summary>How long a connection attempt may take. Default 10 s.</summary>
        public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>How often to send Ping (with the last push seq received); zero turns the heartbeat off.
        /// A connection that receives nothing for 3 intervals is taken as lost. Default 10 s.</summary>
        public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>How long a request waits for its reply before failing with Timeout. Default 10 s.</summary>
        public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Reconnect after a connection loss and resume the session. Default true.</summary>
        public bool Reconnect { get; set; } = true;

        /// <summary>Wait before the first reconnect attempt; it doubles after each failed one. Default 0.5 s.</summary>
        public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(500);

        /// <summary>The longest wait between reconnect attempts. Default 10 s.</summary>
        public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Give up after this many failed attempts in a row; 0 (default) never gives up.</summary>
        public int ReconnectMaxAttempts { get; set; }

        /// <summary>The largest frame length accepted or sent (docs/protocol.md's length field). Default 1 MiB.</summary>
        public int MaxFrameSize { get; set; } = Frame.DefaultMaxLength;

        /// <summary>The most items (replies, pushes, events) one <see cref="MoonforgeClient.Update"/> runs; the rest
        /// wait for the next frame. Default 32.</summary>
        public int MaxWorkPerUpdate { get; set; } = 32;

        /// <summary>The most items waiting for <see cref="MoonforgeClient.Update"/>: when the game does not pump
        /// (a paused app), the client stops reading from the connection at this many, and the server holds
        /// the rest. Default 512.</summary>
        public int MaxQueuedWork { get; set; } = 512;

        /// <summary>The messages the client knows; null (default) means <see cref="MessageTable.CreateDefault"/>.</summary>
        public MessageTable Messages { get; set; }

        /// <summary>Where the client reports what it drops or retries (called from any thread); null writes
        /// to Console.Error. In Unity: <c>Log = UnityEngine.Debug.LogWarning</c>.</summary>
        public Action<string> Log { get; set; }

        /// <summary>Makes the transport for each connection; null (default) builds one from Transport,
        /// Host, Port, UseTls and WebSocketPath. It gets a copy of the options whose Host and Port are the
        /// endpoint being tried. For custom transports and tests.</summary>
        public Func<ClientOptions, ITransport> TransportFactory { get; set; }
    }
}
