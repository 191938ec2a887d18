using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;

namespace Moonforge
{
    /// <summary>
    /// Frames over KCP over UDP (docs/protocol.md, "KCP"): the TCP byte stream carried in a
    /// <see cref="Kcp"/> conversation with a random non-zero id. The socket and KCP's timers are driven
    /// by <see cref="Poll"/>, which <see cref="MoonforgeClient.Update"/> calls on the game's thread;
    /// <see cref="SendAsync"/> (writer loop) hands its bytes to KCP and sends at once. KCP has no
    /// handshake and no close: connecting opens the socket, a Kick from the server ends the stream, and a
    /// server that went away shows as silence, which the client's heartbeat notices.
    /// </summary>
    public sealed class KcpTransport : ITransport, IPolledTransport
    {
        private const int MaxWaitingSegments = 1024;
        private const int MaxDatagramsPerPoll = 512;

        private readonly string host;
        private readonly int port;
        private readonly int maxLength;
        private readonly object sync = new object();
        private readonly SemaphoreSlim readable = new SemaphoreSlim(0);
        private readonly SemaphoreSlim writable = new SemaphoreSlim(0);
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private readonly byte[] datagram = new byte[2048];
        private Socket socket;
        private Kcp kcp;
        private byte[] rbuf = new byte[16 * 1024];
        private int rstart;
        private int rend;
        private byte[] wbuf = new byte[16 * 1024];
        private bool kicked;
        private string failure; // why the stream ended, once it has

        /// <summary>A transport to host:port; maxLength is the largest length field accepted.</summary>
        public KcpTransport(string host, int port, int maxLength)
        {
            this.host = host;
            this.port = port;
            this.maxLength = maxLength;
        }

        /// <summary>The conversation id, once connected.</summary>
        public uint Conv { get { lock (sync) return kcp != null ? kcp.Conv : 0; } }

        private uint Now { get { return unchecked((uint)clock.ElapsedMilliseconds); } }

        /// <inheritdoc/>
        public async Task ConnectAsync(CancellationToken cancellationToken)
        {
            IPAddress[] addrs = await Dns.GetHostAddressesAsync(host).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (addrs.Length == 0) throw new IOException("no address for " + host);
            IPAddress addr = Array.Find(addrs, a => a.AddressFamily == AddressFamily.InterNetwork) ?? addrs[0];
            var s = new Socket(addr.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            s.Blocking = false;
            s.Connect(new IPEndPoint(addr, port));
            lock (sync)
            {
                if (failure != null)
                {
                    s.Close();
                    throw new IOException(failure);
                }
                socket = s;
                kcp = new Kcp(NewConv(), Output);
                kcp.Received = OnReceived;
            }
        }

        private static uint NewConv()
        {
            var b = new byte[4];
            using (var rng = RandomNumberGenerator.Create())
            {
                while (true)
                {
                    rng.GetBytes(b);
                    uint v = (uint)(b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24);
                    if (v != 0) return v;
                }
            }
        }

        // Output sends one datagram; called under sync.
        private void Output(byte[] buf, int length)
        {
            try
            {
                socket.Send(buf, 0, length, SocketFlags.None);
            }
            catch (SocketException)
            {
                // Lost like any datagram (a full buffer, ICMP unreachable); KCP resends.
            }
        }

        // OnReceived appends in-order stream bytes; called under sync.
        private void OnReceived(byte[] data)
        {
            if (rend + data.Length > rbuf.Length)
            {
                int live = rend - rstart;
                byte[] dst = live + data.Length > rbuf.Length ? new byte[Math.Max(rbuf.Length * 2, live + data.Length)] : rbuf;
                Buffer.BlockCopy(rbuf, rstart, dst, 0, live);
                rbuf = dst;
                rstart = 0;
                rend = live;
            }
            Buffer.BlockCopy(data, 0, rbuf, rend, data.Length);
            rend += data.Length;
        }

        /// <summary>Reads what the socket holds into KCP, runs its timers and wakes the reader and the
        /// writer. Called by <see cref="MoonforgeClient.Update"/> on the game's thread.</summary>
        public void Poll()
        {
            bool wake;
            lock (sync)
            {
                if (socket == null || failure != null) return;
                int before = rend - rstart;
                for (int i = 0; i < MaxDatagramsPerPoll; i++)
                {
                    int n;
                    try
                    {
                        if (socket.Available == 0) break;
                        n = socket.Receive(datagram, 0, datagram.Length, SocketFlags.None);
                    }
                    catch (SocketException e)
                    {
                        if (e.SocketErrorCode == SocketError.WouldBlock || e.SocketErrorCode == SocketError.ConnectionReset || e.SocketErrorCode == SocketError.ConnectionRefused) break;
                        failure = "udp: " + e.Message;
                        break;
                    }
                    kcp.SetClock(Now);
                    kcp.Input(datagram, 0, n);
                }
                kcp.Update(Now);
                if (kcp.Dead) failure = "kcp: no acknowledgement after " + Kcp.DeadLink + " transmissions";
                wake = rend - rstart > before || failure != null;
                if (kcp.Waiting < MaxWaitingSegments && writable.CurrentCount == 0) writable.Release();
            }
            if (wake && readable.CurrentCount == 0) readable.Release();
        }

        /// <inheritdoc/>
        public async Task<Frame> ReceiveAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                lock (sync)
                {
                    if (kicked) throw new IOException("kicked by the server");
                    Frame f;
                    int used;
                    if (FrameCodec.TryDecodeStream(rbuf, rstart, rend - rstart, maxLength, out f, out used))
                    {
                        rstart += used;
                        if (rstart == rend) rstart = rend = 0;
                        kicked = !f.IsReply && f.MsgId == Kick.MessageId;
                        return f;
                    }
                    if (failure != null) throw new IOException(failure);
                }
                await readable.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        /// <inheritdoc/>
        public async Task SendAsync(IList<Frame> frames, CancellationToken cancellationToken)
        {
            int n = FrameCodec.WriteStreams(frames, ref wbuf);
            while (true)
            {
                lock (sync)
                {
                    if (failure != null) throw new IOException(failure);
                    if (kcp.Waiting < MaxWaitingSegments)
                    {
                        kcp.Send(wbuf, 0, n);
                        kcp.SetClock(Now);
                        kcp.Flush();
                        return;
                    }
                }
                await writable.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        /// <inheritdoc/>
        public void Abort()
        {
            lock (sync)
            {
                if (failure == null) failure = "connection closed";
                if (socket != null) socket.Close();
            }
            readable.Release();
            writable.Release();
        }

        /// <summary>Closes the connection.</summary>
        public void Dispose()
        {
            Abort();
        }
    }
}
