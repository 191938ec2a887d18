namespace Moonforge
{
    /// <summary>What happened to a client's connection or session.</summary>
    public enum ClientEvent
    {
        /// <summary>A connection is up (the first one, and each one after a reconnect).</summary>
        Connected,
        /// <summary>The connection is gone; <see cref="EventInfo.WillReconnect"/> says whether the client tries again.</summary>
        Disconnected,
        /// <summary>The session was resumed on a new connection; missed pushes follow, in order.</summary>
        Resumed,
        /// <summary>The server sent Kick (<see cref="EventInfo.Code"/> and <see cref="EventInfo.Reason"/>) and closes the connection.</summary>
        Kicked,
        /// <summary>The session could not be resumed: log in again.</summary>
        LoginRequired,
    }

    /// <summary>Details of a <see cref="ClientEvent"/>. Immutable.</summary>
    public sealed class EventInfo
    {
        /// <summary>Creates the details.</summary>
        public EventInfo(ErrorCode code, string reason, uint replayed, bool willReconnect)
        {
            Code = code;
            Reason = reason ?? "";
            Replayed = replayed;
            WillReconnect = willReconnect;
        }

        /// <summary>Kicked and LoginRequired: the code; otherwise 0.</summary>
        public ErrorCode Code { get; }

        /// <summary>Why, in words; may be empty.</summary>
        public string Reason { get; }

        /// <summary>Resumed: how many pushes the server sends again.</summary>
        public uint Replayed { get; }

        /// <summary>Disconnected: whether the client will reconnect and resume.</summary>
        public bool WillReconnect { get; }

        /// <summary>For logs.</summary>
        public override string ToString()
        {
            return "code=" + ErrorCodes.Name(Code) + " reason=" + Reason + " replayed=" + Replayed + " reconnect=" + WillReconnect;
        }
    }
}
