using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Moonforge
{
    /// <summary>
    /// Frames over TCP (optionally TLS): reads into a buffer and splits it into frames; writes each
    /// batch of frames with a single write. See <see cref="ITransport"/> for the threading contract.
    /// </summary>
    public sealed class TcpTransport : ITransport
    {
        private readonly string host;
        private readonly int port;
        private readonly bool tls;
        private readonly int maxLength;
        private readonly TcpClient tcp = new TcpClient();
        private Stream stream;
        private byte[] rbuf;
        private int rstart;
        private int rend;
        private byte[] wbuf = new byte[16 * 1024];

        /// <summary>A transport to host:port; maxLength is the largest length field accepted.</summary>
        public TcpTransport(string host, int port, bool tls, int maxLength)
        {
            this.host = host;
            this.port = port;
            this.tls = tls;
            this.maxLength = maxLength;
            rbuf = new byte[Math.Min(64 * 1024, maxLength + Frame.LengthSize)];
            tcp.NoDelay = true;
        }

        /// <inheritdoc/>
        public async Task ConnectAsync(CancellationToken cancellationToken)
        {
            using (cancellationToken.Register(Abort))
            {
                try
                {
                    await tcp.ConnectAsync(host, port).ConfigureAwait(false);
                }
                catch (ObjectDisposedException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
                Stream s = tcp.GetStream();
                if (tls)
                {
                    var ssl = new SslStream(s, false);
                    await ssl.AuthenticateAsClientAsync(host).ConfigureAwait(false);
                    s = ssl;
                }
                stream = s;
            }
        }

        /// <inheritdoc/>
        public async Task<Frame> ReceiveAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                Frame f;
                int used;
                if (FrameCodec.TryDecodeStream(rbuf, rstart, rend - rstart, maxLength, out f, out used))
                {
                    rstart += used;
                    return f;
                }
                MakeRoom();
                int n = await stream.ReadAsync(rbuf, rend, rbuf.Length - rend, cancellationToken).ConfigureAwait(false);
                if (n <= 0) throw new IOException("connection closed by the server");
                rend += n;
            }
        }

        /// <inheritdoc/>
        public async Task SendAsync(IList<Frame> frames, CancellationToken cancellationToken)
        {
            int n = FrameCodec.WriteStreams(frames, ref wbuf);
            await stream.WriteAsync(wbuf, 0, n, cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        /// <inheritdoc/>
        public void Abort()
        {
            tcp.Close();
        }

        /// <summary>Closes the connection.</summary>
        public void Dispose()
        {
            Abort();
        }

        // MakeRoom moves unread bytes to the front, or grows the buffer for a frame larger than it.
        private void MakeRoom()
        {
            if (rstart == rend)
            {
                rstart = rend = 0;
                return;
            }
            if (rstart > 0)
            {
                Buffer.BlockCopy(rbuf, rstart, rbuf, 0, rend - rstart);
                rend -= rstart;
                rstart = 0;
            }
            if (rend == rbuf.Length)
            {
                var grown = new byte[Math.Min(rbuf.Length * 2, maxLength + Frame.LengthSize)];
                Buffer.BlockCopy(rbuf, 0, grown, 0, rend);
                rbuf = grown;
            }
        }
    }
}
