using System;
using System.Collections.Generic;
using System.IO;
using System.Net.WebSockets;
using System.Threading;
using System.Threading.Tasks;

namespace Moonforge
{
    /// <summary>
    /// Frames over a WebSocket (System.Net.WebSockets.ClientWebSocket): one binary message per frame,
    /// without the length prefix. See <see cref="ITransport"/> for the threading contract.
    /// </summary>
    public sealed class WebSocketTransport : ITransport
    {
        private readonly Uri uri;
        private readonly int maxLength;
        private readonly ClientWebSocket ws = new ClientWebSocket();
        private byte[] rbuf = new byte[16 * 1024];

        /// <summary>A transport to uri (ws:// or wss://); maxLength is the largest frame accepted.</summary>
        public WebSocketTransport(Uri uri, int maxLength)
        {
            this.uri = uri;
            this.maxLength = maxLength;
        }

        /// <inheritdoc/>
        public Task ConnectAsync(CancellationToken cancellationToken)
        {
            return ws.ConnectAsync(uri, cancellationToken);
        }

        /// <inheritdoc/>
        public async Task<Frame> ReceiveAsync(CancellationToken cancellationToken)
        {
            int n = 0;
            while (true)
            {
                if (n == rbuf.Length)
                {
                    if (rbuf.Length >= maxLength)
                    {
                        throw new MoonforgeException(ErrorCode.FrameTooLarge, "WebSocket message exceeds the maximum frame size " + maxLength);
                    }
                    var grown = new byte[Math.Min(rbuf.Length * 2, maxLength)];
                    Buffer.BlockCopy(rbuf, 0, grown, 0, n);
                    rbuf = grown;
                }
                var r = await ws.ReceiveAsync(new ArraySegment<byte>(rbuf, n, rbuf.Length - n), cancellationToken).ConfigureAwait(false);
                if (r.MessageType == WebSocketMessageType.Close) throw new IOException("WebSocket closed by the server");
                if (r.MessageType == WebSocketMessageType.Text)
                {
                    throw new MoonforgeException(ErrorCode.MalformedFrame, "text WebSocket message from the server");
                }
                n += r.Count;
                if (r.EndOfMessage) return FrameCodec.DecodeBare(rbuf, 0, n, maxLength);
            }
        }

        /// <inheritdoc/>
        public async Task SendAsync(IList<Frame> frames, CancellationToken cancellationToken)
        {
            for (int i = 0; i < frames.Count; i++)
            {
                byte[] bare = FrameCodec.EncodeBare(frames[i]);
                await ws.SendAsync(new ArraySegment<byte>(bare), WebSocketMessageType.Binary, true, cancellationToken).ConfigureAwait(false);
            }
        }

        /// <inheritdoc/>
        public void Abort()
        {
            ws.Abort();
        }

        /// <summary>Closes the connection.</summary>
        public void Dispose()
        {
            ws.Abort();
            ws.Dispose();
        }
    }
}
