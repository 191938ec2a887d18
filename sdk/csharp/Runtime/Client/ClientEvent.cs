namespace Moonforge
{
    /// <summary>What happened to a client's connection or session.</summary>
    public enum ClientEvent
    {
        /// <summary>A connection is up (the first one, and each one after a reconnect).</summary>
        Connected,
        /// <summary>The connection is gone; <see cref="EventInfo.Disconnect"/> says why and
        /// <see cref="EventInfo.WillReconnect"/> whether the client tries again.</summary>
        Disconnected,
        /// <summary>The session was resumed on a new connection; missed pushes follow, in order.</summary>
        Resumed,
        /// <summary>The server sent Kick (<see cref="EventInfo.Code"/> and <see cref="EventInfo.Reason"/>) and closes the connection.</summary>
        Kicked,
        /// <summary>The session could not be resumed: log in again.</summary>
        LoginRequired,
        /// <summary>A reconnect attempt starts (<see cref="EventInfo.Attempt"/> counts them from 1).</summary>
        Reconnecting,
    }

    /// <summary>Why a connection ended (<see cref="ClientEvent.Disconnected"/>).</summary>
    public enum DisconnectReason
    {
        /// <summary>Not a Disconnected event.</summary>
        None,
        /// <summary><see cref="MoonforgeClient.Close"/> was called.</summary>
        ClosedByClient,
        /// <summary>The network failed or the server closed the connection.</summary>
        ConnectionLost,
        /// <summary>Nothing came from the server for 3 heartbeat intervals.</summary>
        ServerSilent,
        /// <summary>The server sent Kick before closing; <see cref="EventInfo.Code"/> is its code.</summary>
        Kicked,
        /// <summary>The server sent bytes that break the frame format.</summary>
        ProtocolViolation,
        /// <summary>The server closed the connection after the client's logout (<see cref="MoonforgeClient.LogoutAsync"/>).</summary>
        LoggedOut,
        /// <summary>The client gave up after <see cref="ClientOptions.ReconnectMaxAttempts"/> attempts.</summary>
        ReconnectFailed,
    }

    /// <summary>Details of a <see cref="ClientEvent"/>. Immutable.</summary>
    public sealed class EventInfo
    {
        /// <summary>Creates the details.</summary>
        public EventInfo(ErrorCode code, string reason, uint replayed, bool willReconnect)
            : this(code, reason, replayed, willReconnect, DisconnectReason.None, "", 0)
        {
        }

        /// <summary>Creates the details, with the cause of a disconnection and a reconnect attempt.</summary>
        public EventInfo(ErrorCode code, string reason, uint replayed, bool willReconnect, DisconnectReason disconnect, string detail, int attempt)
        {
            Code = code;
            Reason = reason ?? "";
            Replayed = replayed;
            WillReconnect = willReconnect;
            Disconnect = disconnect;
            Detail = detail ?? "";
            Attempt = attempt;
        }

        /// <summary>Kicked, LoginRequired, and Disconnected after a kick: the code; otherwise
        /// <see cref="ErrorCode.None"/>.</summary>
        public ErrorCode Code { get; }

        /// <summary>Why, in words: the server's reason for Kicked and LoginRequired, the client's for
        /// Disconnected; may be empty.</summary>
        public string Reason { get; }

        /// <summary>Disconnected: why, as a name.</summary>
        public DisconnectReason Disconnect { get; }

        /// <summary>Disconnected and Reconnecting: the underlying error, for logs; may be empty.</summary>
        public string Detail { get; }

        /// <summary>Reconnecting: the attempt, from 1.</summary>
        public int Attempt { get; }

        /// <summary>Resumed: how many pushes the server sends again.</summary>
        public uint Replayed { get; }

        /// <summary>Disconnected: whether the client will reconnect and resume.</summary>
        public bool WillReconnect { get; }

        /// <summary>For logs: the names that apply, "Disconnected ServerSilent, will reconnect (…)".</summary>
        public override string ToString()
        {
            var s = new System.Text.StringBuilder();
            if (Disconnect != DisconnectReason.None) s.Append(Disconnect).Append(WillReconnect ? ", will reconnect" : ", no reconnect");
            if (Code != ErrorCode.None) s.Append(s.Length > 0 ? " " : "").Append(ErrorCodes.Name(Code));
            if (Attempt > 0) s.Append(s.Length > 0 ? " " : "").Append("attempt ").Append(Attempt);
            if (Replayed > 0) s.Append(s.Length > 0 ? " " : "").Append("replayed ").Append(Replayed);
            if (Reason != "") s.Append(s.Length > 0 ? ": " : "").Append(Reason);
            if (Detail != "") s.Append(" (").Append(Detail).Append(')');
            return s.ToString();
        }
    }
}
