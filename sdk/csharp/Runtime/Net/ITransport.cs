using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Moonforge
{
    /// <summary>Which transport a client uses.</summary>
    public enum Transport
    {
        /// <summary>Length-prefixed frames on a TCP connection (default port 7001).</summary>
        Tcp,
        /// <summary>One frame per binary WebSocket message, path /ws (default port 7002).</summary>
        WebSocket,
        /// <summary>The TCP byte stream in a KCP session over UDP (default port 7003): for lossy links.</summary>
        Kcp,
    }

    /// <summary>
    /// A transport whose socket and timers run from the game's loop (<see cref="KcpTransport"/>):
    /// <see cref="MoonforgeClient.Update"/> calls <see cref="Poll"/> on its thread, before it runs callbacks.
    /// </summary>
    public interface IPolledTransport
    {
        /// <summary>Reads what arrived, runs the timers, sends what is due; never blocks.</summary>
        void Poll();
    }

    /// <summary>
    /// One connection that carries frames. The client calls <see cref="ReceiveAsync"/> from one reader
    /// loop and <see cref="SendAsync"/> from one writer loop, concurrently with each other;
    /// <see cref="Abort"/> may be called from any thread at any time.
    /// </summary>
    public interface ITransport : IDisposable
    {
        /// <summary>Connects; completes when frames can flow.</summary>
        Task ConnectAsync(CancellationToken cancellationToken);

        /// <summary>The next frame from the server.</summary>
        /// <exception cref="MoonforgeException">MalformedFrame or FrameTooLarge: a protocol violation.</exception>
        /// <exception cref="System.IO.IOException">The connection closed or failed.</exception>
        Task<Frame> ReceiveAsync(CancellationToken cancellationToken);

        /// <summary>Writes the frames in order, batched as the transport allows.</summary>
        Task SendAsync(IList<Frame> frames, CancellationToken cancellationToken);

        /// <summary>Closes the connection at once, as a network failure would: pending calls fail.</summary>
        void Abort();
    }
}
